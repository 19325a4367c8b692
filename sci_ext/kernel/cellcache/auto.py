"""Auto mode: every code cell of the kernel runs as if it had ``%%cached`` on it.

``%sci_cache auto on`` (a runtime override of ``cache.auto``) or ``cache.auto = true``
in a config file or ``SCI_EXT_CACHE__AUTO=true`` turns it on.  An IPython *cleanup*
input transformer (it sees the raw cell before magics are parsed) puts ``%%cached`` in
front of each cell, so the cell goes through exactly the same keys, notices,
explanations and refusals as a hand-written ``%%cached`` cell.

Left as written, by design (each has nothing worth caching, or is cheaper to run than
to key):

- cells that start with a cell magic (``%%bash``, ``%%time``, an explicit ``%%cached``),
  and ``%%nocache`` cells, which run plain (the magic line is removed);
- cells that only import modules, only run line magics or shell commands (``%matplotlib
  inline``, ``!pip install``), or only show a value (``df``, ``df.shape``, ``xs[0]``);
- cells that do not parse (IPython raises the same ``SyntaxError`` as without sci_ext).

A cell that cannot be cached still says why in one line, once per cell (not on every
run).  With ``SCI_EXT_AUTO_REPORT`` set to a file path (the nbval plugin and ``jupyter
sci run`` set it), notices go to that file as JSON lines, one per cell, instead of the
cell's output, so outputs stay exactly what a plain run prints.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...core.autorun import REPORT_VAR, RUNNER_CACHE_VAR

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..state import KernelState

__all__ = ["REPORT_VAR", "AutoCache", "install", "register", "skip_reason"]


_PLAIN_MAGIC = "%%nocache"
#: ``cache.auto``'s default (``CacheConfig.auto``; a unit test keeps them equal), without importing the config.
_AUTO_DEFAULT = False


#: Set while auto mode is installed: the engine's one-line notices go here instead of stderr.
notice_sink: Callable[[str], None] | None = None


def _python_source(text: str) -> str | None:
    """The cell as Python (IPython's own transforms, without ours), or None if it does not parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        source = TransformerManager().transform_cell(text)
        ast.parse(source)
    except SyntaxError:
        return None
    return source


def _is_magic_call(node: ast.stmt) -> bool:
    """``get_ipython().run_line_magic(...)`` / ``.system(...)`` / ``.getoutput(...)`` as a statement."""
    value = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Attribute):
        return False
    owner = value.func.value
    return (
        value.func.attr in ("run_line_magic", "system", "getoutput")
        and isinstance(owner, ast.Call)
        and isinstance(owner.func, ast.Name)
        and owner.func.id == "get_ipython"
    )


def _is_plain_value(node: ast.expr) -> bool:
    """A name, an attribute of one, or a subscript by a constant: showing it computes nothing."""
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return _is_plain_value(node.value)
    if isinstance(node, ast.Subscript):
        return _is_plain_value(node.value) and isinstance(node.slice, ast.Constant)
    return False


def skip_reason(text: str) -> str | None:
    """Why auto mode leaves this cell as written, or None when it caches it."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first or all(line.strip().startswith("#") for line in text.splitlines() if line.strip()):
        return "empty"
    if first.startswith("%%"):
        return f"starts with the cell magic {first.split()[0]}"
    source = _python_source(text)
    if source is None:
        return "does not parse"
    body = ast.parse(source).body
    if not body:
        return "empty"
    if all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body):
        return "only imports"
    if all(_is_magic_call(node) for node in body):
        return "only line magics or shell commands"
    if len(body) == 1 and isinstance(body[0], ast.Expr) and _is_plain_value(body[0].value):
        return "only shows a value"
    return None


class AutoCache:
    """The input transformer and the per-cell bookkeeping of auto mode for one shell."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell
        #: Per cell (hash of its source): the notices already shown, so each is shown once.
        self._shown: dict[str, set[str]] = {}
        self._current: dict[str, Any] | None = None
        self._seq = 0
        #: True from pre_run_cell to post_run_cell: a transform then is of a magic's body
        #: (``%%cached``, ``%%guarded`` transform their body), never of a notebook cell.
        self._running = False

    @staticmethod
    def enabled() -> bool:
        """``cache.auto`` of the current configuration (runtime overrides included).

        Until something has built the configuration, a few ``stat`` calls tell whether
        any layer could set it (:func:`~sci_ext.core.config_sources.only_defaults`): with
        none, it is its default (off) and a kernel's first cells do not import and build
        the configuration for this question.  ``%sci_cache auto on`` / ``%sci_config
        cache.auto=true`` (they build it) count from the next cell on; a config file or
        variable that appears, from the first cell that starts 2 s after the last look, as
        the hot reload of config files sees a change (``kernel/config_watch.py``).
        """
        from ...core.config_sources import only_defaults

        if only_defaults():
            return _AUTO_DEFAULT
        from ...core.config import get_config

        try:
            return bool(getattr(get_config().cache, "auto", False))
        except Exception:  # an invalid config file must not break every cell
            return False

    @staticmethod
    def report_path() -> str | None:
        """The JSON-lines report file, when a runner asked for one."""
        return os.environ.get(REPORT_VAR) or None

    # -- the transformer ---------------------------------------------------------------------
    def transform(self, lines: list[str]) -> list[str]:
        """IPython cleanup transformer: prefix ``%%cached`` (or strip ``%%nocache``)."""
        text = "".join(lines)
        if self._running or not text.strip():
            return lines
        enabled = self.enabled()
        if not enabled and not self.report_path():
            return lines
        stripped = text.lstrip()
        import hashlib

        digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        self._seq += 1
        self._current = {"seq": self._seq, "cell": digest, "first_line": _first_line(text), "started": time.time()}
        if not enabled:  # a runner asked for a report but the cache is unusable: every cell runs
            self._current.update(status="ran", reason="the cache is unusable (see the warning): ran plain")
            return lines
        if stripped.startswith(_PLAIN_MAGIC):
            self._current.update(status="plain", reason="%%nocache")
            return [line for line in stripped.splitlines(keepends=True)[1:]]
        reason = skip_reason(text)
        if reason is not None:
            self._current.update(status="skipped", reason=reason)
            return lines
        from .session import SESSION

        SESSION.last = None  # the run this cell makes is the one read after it
        quiet = " --quiet" if self.report_path() else ""
        return [f"%%cached{quiet}\n", *lines]

    def wrapped_now(self) -> bool:
        """Is the running cell one this transformer wrapped in ``%%cached`` (not the notebook's own)?"""
        current = self._current
        return current is not None and "status" not in current

    # -- notices -----------------------------------------------------------------------------
    def notice(self, message: str) -> None:
        """A one-line notice of the engine: into the report, or shown once per cell."""
        current = self._current
        if current is None or "status" in current:
            # Not a cell auto mode wrapped (the notebook's own %%cached, auto mode off): as without it.
            print(message, file=sys.stderr, flush=True)
            return
        if self.report_path():
            current.setdefault("notices", []).append(message)
            return
        key = current["cell"] if current else ""
        seen = self._shown.setdefault(key, set())
        if current is not None and message in seen:
            return
        seen.add(message)
        print(message, file=sys.stderr, flush=True)

    # -- around the cell ---------------------------------------------------------------------
    def pre_run_cell(self, info: Any = None) -> None:
        """The cell starts: transforms from now on are of magic bodies."""
        self._running = True

    def post_run_cell(self, result: Any) -> None:
        """Decide what happened to the cell and write its report line (when asked for)."""
        self._running = False
        current, self._current = self._current, None
        if current is None:
            return
        path = self.report_path()
        if path is None:
            return
        current["seconds"] = round(time.time() - current.pop("started"), 6)
        if "status" not in current:
            from .session import SESSION

            run = SESSION.last
            failed = result is not None and not getattr(result, "success", True)
            if failed:
                current.update(status="failed", reason="the cell raised: not stored")
            elif run is None:
                current.update(status="ran", reason="not cacheable")
            elif run.status == "hit":
                current.update(status="restored", reason="")
            elif run.status == "uncached":
                current.update(status="ran", reason=f"not cacheable: {run.reason}" if run.reason else "not cacheable")
            else:
                current.update(status="ran", reason=run.reason or "no stored entry")
            if current["status"] == "ran" and current.get("notices") and current["reason"] in ("not cacheable",):
                current["reason"] = current["notices"][-1]
        _append_line(path, json.dumps(current))


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line[:80]


def _append_line(path: str, line: str) -> None:
    from ...core import trust

    fd = trust.open_private(path, os.O_WRONLY | os.O_APPEND, what="auto-mode report")
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def runner_cache_dir() -> str | None:
    """The runner's cache directory when the running cell is one auto mode wrapped for a runner."""
    sink = notice_sink
    auto = getattr(sink, "__self__", None)
    if not isinstance(auto, AutoCache) or not auto.wrapped_now():
        return None
    return os.environ.get(RUNNER_CACHE_VAR) or None


def register(ipython: InteractiveShell, state: KernelState) -> None:
    """Install auto mode's transformer and hooks at ``%load_ext`` (inactive until ``cache.auto``)."""
    global notice_sink
    auto, remove = install(ipython)
    notice_sink = auto.notice

    def uninstall() -> None:
        global notice_sink
        remove()
        notice_sink = None

    state.on_close(uninstall)


def install(shell: InteractiveShell) -> tuple[AutoCache, Any]:
    """Add the transformer and the hook; returns the instance and a function that removes both."""
    auto = AutoCache(shell)
    shell.input_transformers_cleanup.append(auto.transform)
    shell.events.register("pre_run_cell", auto.pre_run_cell)
    shell.events.register("post_run_cell", auto.post_run_cell)

    def remove() -> None:
        if auto.transform in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.remove(auto.transform)
        for event, callback in (("pre_run_cell", auto.pre_run_cell), ("post_run_cell", auto.post_run_cell)):
            try:
                shell.events.unregister(event, callback)
            except ValueError:
                pass

    return auto, remove
