"""``%%cached`` and ``%sci_cache``: thin magics over :mod:`.cellcache` and :mod:`sci_ext.core.cache.admin`."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from .._table import Table
from ..core.errors import CacheError
from .lines import split_line
from .state import KernelState

__all__ = ["CacheMagics", "parse_cached_line", "register"]


def _names(given: list[str] | None) -> list[str] | None:
    if given is None:
        return None
    # An option given twice adds to the first (--inputs a --inputs b is a,b), never replaces it.
    names = [n.strip() for text in given for n in text.split(",") if n.strip()]
    for name in names:
        if not name.isidentifier():
            raise UsageError(f"%%cached: {name!r} is not a variable name (expected a,b,c)")
    return names


def parse_cached_line(line: str) -> Any:
    """Parse a ``%%cached`` line into :class:`~.cellcache.plan.CellOptions` (``UsageError`` if bad)."""
    import dataclasses

    # argparse costs a warm hit more than the rest of it: a line parses the same every time.  The
    # caller gets its own copy (its lists included; their items are strings), not the remembered one.
    parsed = _parse_cached_line(line)
    return dataclasses.replace(
        parsed,
        inputs=None if parsed.inputs is None else list(parsed.inputs),
        outputs=None if parsed.outputs is None else list(parsed.outputs),
        ignore=list(parsed.ignore),
        files=list(parsed.files),
    )


@functools.lru_cache(maxsize=128)
def _parse_cached_line(line: str) -> Any:
    from .cellcache.plan import CellOptions

    # Quotes group words as in a shell: --files "my data/*.csv"; a trailing # comment is dropped.
    args = CacheMagics.cached.parser.parse_args(split_line(line, "%%cached"))
    if args.ttl is not None and not args.ttl >= 0:  # NaN too
        raise UsageError(f"%%cached: --ttl must be >= 0, got {args.ttl}")
    if args.name and not args.name.replace("-", "_").replace(".", "_").isidentifier():
        raise UsageError(f"%%cached: NAME {args.name!r} may hold letters, digits, '_', '-' and '.' only")
    return CellOptions(
        name=args.name or "",
        ttl=args.ttl,
        inputs=_names(args.inputs),
        outputs=_names(args.outputs),
        ignore=_names(args.ignore) or [],
        files=list(args.files),
        force=args.force,
        backend=args.backend,
        quiet=args.quiet,
    )


@magics_class
class CacheMagics(Magics):
    """``%%cached`` and ``%sci_cache``."""

    @magic_arguments()
    @argument("name", nargs="?", default="", help="a label for listing and clearing (part of the key)")
    @argument("--ttl", type=float, metavar="SECONDS", help="time to live of the entry (default: cache.ttl_seconds)")
    @argument(
        "--inputs",
        action="append",
        metavar="a,b",
        help="key on exactly these variables instead of the ones the cell reads",
    )
    @argument(
        "--outputs",
        action="append",
        metavar="x,y",
        help="store exactly these variables instead of the ones the cell binds",
    )
    @argument(
        "--ignore",
        action="append",
        metavar="a,b",
        help="leave these variables out of the key on purpose (clients, loggers)",
    )
    @argument(
        "--files", nargs="+", action="extend", default=[], metavar="GLOB", help="files whose content is part of the key"
    )
    @argument("--force", action="store_true", help="run the cell and overwrite the entry")
    @argument("--backend", choices=("memory", "disk", "redis"), help="where to store (default: cache.backend)")
    @argument("--quiet", action="store_true", help="no notice when the cell is restored")
    @cell_magic
    def cached(self, line: str, cell: str) -> Any:
        """Cache a cell: restore its variables and outputs when nothing it depends on changed.

        ::

            %%cached [NAME] [--ttl SECONDS] [--inputs a,b] [--outputs x,y] [--ignore a,b]
                     [--files GLOB ...] [--force] [--backend memory|disk|redis] [--quiet]

        The key covers the cell's code, the content of every variable it reads,
        the code of notebook functions it calls, the modules it imports and the
        files given with ``--files``: any change is a miss, never a stale hit.
        """
        __tracebackhide__ = True
        from .cellcache.run import run_cached_cell

        opts = parse_cached_line(line)
        try:
            run = run_cached_cell(self.shell, cell, opts)
        except ValueError as exc:
            if "--backend redis" in str(exc):
                raise UsageError(f"%%cached: {exc}") from None
            raise
        # A result already shown through the displayhook (before the cell's figures) is not shown twice.
        return None if run.shown else run.result

    @magic_arguments()
    @argument(
        "action",
        nargs="?",
        default="list",
        choices=("list", "info", "clear", "stats", "why", "auto"),
        help="what to do",
    )
    @argument("target", nargs="?", help="NAME or KEY (prefix) for info, clear and why; on|off for auto")
    @argument("--all", action="store_true", help="with clear: every entry and counter")
    @argument("--backend", choices=("memory", "disk", "redis"), help="which store (default: cache.backend)")
    @line_magic
    def sci_cache(self, line: str = "") -> None:
        """Manage the cell cache.

        ::

            %sci_cache list              # name, key prefix, size, created, hits
            %sci_cache info NAME|KEY     # one entry in detail
            %sci_cache clear NAME|KEY    # remove entries
            %sci_cache clear --all       # remove everything
            %sci_cache stats             # hits, misses, ratio, bytes
            %sci_cache why [NAME]        # why the cell last ran: each key part, stored run vs last run
            %sci_cache auto on|off       # cache every code cell (%%nocache opts one out)
        """
        from ..core.cache import admin

        args = self.sci_cache.parser.parse_args(split_line(line, "%sci_cache"))
        try:
            if args.action == "auto":
                _auto(args.target)
            elif args.action == "list":
                display(_table(admin.list_view(args.backend)))
            elif args.action == "info":
                if not args.target:
                    raise UsageError("%sci_cache info needs a NAME or KEY")
                display(_table(admin.info_view(args.target, args.backend)))
            elif args.action == "why":
                _why(args.target, args.backend)
            elif args.action == "clear":
                print(admin.clear(args.target, args.all, args.backend))
                if args.all:
                    from .cellcache.session import SESSION

                    SESSION.hits = SESSION.misses = 0
            else:
                from .cellcache.session import SESSION

                display(_table(admin.stats_view(args.backend, session=(SESSION.hits, SESSION.misses))))
        except LookupError as exc:
            raise UsageError(f"%sci_cache: {exc.args[0]}") from None
        except (OSError, sqlite3.Error, CacheError) as exc:
            raise UsageError(f"%sci_cache: the cache cannot be opened ({type(exc).__name__}: {exc})") from None

    @cell_magic
    def nocache(self, line: str, cell: str) -> None:
        """Run this cell plain, never cached, also in auto mode (``%sci_cache auto on``)."""
        __tracebackhide__ = True
        # Only reached when auto mode is off (it strips this line itself): a plain run.
        if self.shell is not None:
            self.shell.run_cell(cell, store_history=False)


def _auto(value: str | None) -> None:
    from ..core.config import get_config, get_config_manager

    if value is None:
        print(f"auto mode is {'on' if get_config().cache.auto else 'off'}")
        return
    if value not in ("on", "off"):
        raise UsageError(f"%sci_cache auto: expected on or off, got {value!r}")
    get_config_manager().set("cache.auto", value == "on")
    what = "every code cell is cached (%%nocache opts one out)" if value == "on" else "cells run plain"
    print(f"auto mode {value}: {what}")


def _why(name: str | None, backend: str | None) -> None:
    """Print why the cell NAME (or the last unnamed cached cell) last ran, part by part."""
    from ..core.cache import admin
    from .cellcache import explain
    from .cellcache.run import warn
    from .cellcache.session import SESSION

    identity = f"name:{name}" if name else (SESSION.why.get("") or [""])[0]
    if not identity:
        raise UsageError("%sci_cache why: no unnamed cached cell ran in this kernel yet; give a NAME")
    try:
        store = admin.open_store(backend, warn)
    except ValueError as exc:
        raise UsageError(f"%sci_cache why: {exc}") from None
    note = explain.load_note(store, identity, warn)
    if note is None:
        raise UsageError(f"%sci_cache why: no run of {name or 'that cell'} is recorded")
    print(note.get("line") or f"[sci_ext] {note.get('label', name)}: last run was a {note.get('status', 'run')}")
    title = f"sci_ext: why {note.get('label', name)} last ran ({note.get('status', '?')})"
    display(Table(["part", "compared with", "this run", ""], explain.why_rows(note), title=title))


def _table(view: Any) -> Table:
    return Table(view.header, view.rows, title=view.title)


def register(ipython: Any, state: KernelState) -> None:
    """Register ``%%cached``, ``%%nocache`` and ``%sci_cache`` (auto mode's hooks are installed at load)."""
    ipython.register_magics(CacheMagics)
