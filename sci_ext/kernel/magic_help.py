"""``--help`` (and ``-h``) on every sci_ext magic, as ``%run --help`` and ``%timeit?`` do in IPython.

IPython's ``magic_arguments`` parsers are built without ``--help`` (``%sci_config --help``
was an error); ``%magic?`` already shows the docstring, which ``magic_arguments`` fills
with the usage and every option.  Called each time a magic module is loaded (:mod:`.lazy`): each sci_ext magic
is wrapped so that a line asking for help prints that same text and runs nothing.
"""

from __future__ import annotations

import functools
import inspect
import textwrap
from typing import Any

from .state import KernelState

__all__ = ["help_text", "register", "wants_help"]

#: The magics of sci_ext (line and cell), the ones this module gives ``--help``.
PREFIXES = ("sci_", "cached", "nocache", "guarded")


def wants_help(line: str) -> bool:
    """True when the magic's own options ask for help (``--help`` anywhere, ``-h`` first).

    Only the options count: for ``%%guarded`` what follows ``--fallback`` is a statement.
    """
    options = line.split("#", 1)[0].split("--fallback", 1)[0].split()
    return "--help" in options or options[:1] == ["-h"]


def help_text(kind: str, name: str, func: Any) -> str:
    """What ``%name?`` shows, as plain text: the usage line(s), then the docstring."""
    doc = inspect.cleandoc(getattr(func, "__doc__", None) or f"{name}: no help available")
    if doc.startswith("::"):  # magic_arguments writes the usage as an reST literal block
        doc = textwrap.dedent(doc[2:].strip("\n")).strip()
    prefix = "%%" if kind == "cell" else "%"
    if kind == "cell" and doc.startswith(f"%{name}"):
        doc = "%" + doc  # magic_arguments writes one % for cell magics too
    return doc if doc.startswith(prefix + name) else f"{prefix}{name}\n\n{doc}"


def _wrap(kind: str, name: str, func: Any) -> Any:
    if kind == "cell":

        @functools.wraps(func)
        def cell_magic(line: str, cell: str, *args: Any, **kwargs: Any) -> Any:
            if wants_help(line):
                print(help_text(kind, name, func))
                return None
            return func(line, cell, *args, **kwargs)

        wrapper: Any = cell_magic
    else:

        @functools.wraps(func)
        def line_magic(line: str = "", *args: Any, **kwargs: Any) -> Any:
            if wants_help(line):
                print(help_text(kind, name, func))
                return None
            return func(line, *args, **kwargs)

        wrapper = line_magic
    wrapper._sci_ext_help = True
    return wrapper


def register(ipython: Any, state: KernelState) -> None:
    """Give every sci_ext magic registered so far ``--help``; undone on unload."""
    tables = ipython.magics_manager.magics
    wrapped: list[tuple[str, str, Any, Any]] = []
    for kind in ("line", "cell"):
        table = tables.get(kind, {})
        for name, func in list(table.items()):
            if not name.startswith(PREFIXES) or getattr(func, "_sci_ext_help", False):
                continue
            if type(func).__name__ == "LazyMagic":
                continue  # not loaded yet: wrapped when it is (sci_ext.kernel.lazy)
            table[name] = _wrap(kind, name, func)
            wrapped.append((kind, name, func, table[name]))

    def restore() -> None:
        for kind, name, func, wrapper in wrapped:
            table = tables.get(kind, {})
            if table.get(name) is wrapper:
                table[name] = func

    state.on_close(restore)
