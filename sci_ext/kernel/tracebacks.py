"""Tracebacks that show the researcher's frames only, for cell magics that run the cell themselves.

A cell magic (``%%guarded``, ``%%cached``) runs the cell's code inside its own machinery
(retry loops, tenacity, ``concurrent.futures``, breakers), and IPython shows every frame
from the cell's ``get_ipython().run_cell_magic(...)`` line down.  A researcher needs
the frames of their own code: from the cell's first line down to where it failed.

:func:`trim` marks an exception with where its user's part starts (the first frame in
the cell's file) and cuts the machinery out of the exceptions chained to it;
:func:`install` wraps the shell's traceback formatter once so that a marked exception
is shown from that frame on (IPython adds the frames the exception passes on its way
out of the magic, ``run_cell_magic`` among them, after the magic has raised it: only
the formatter can leave them out).  Unmarked exceptions are shown exactly as before.
An exception raised by the machinery itself (an open breaker refusing the call) has
no user frame and shows its message alone.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

__all__ = ["cell_frames", "install", "trim", "uninstall"]

_MARK = "__sci_ext_user_tb__"
_NO_FRAMES = "none"


def cell_frames(tb: TracebackType | None, filename: str) -> TracebackType | None:
    """The part of ``tb`` that starts at the first frame of ``filename`` (the cell), or ``None``."""
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return tb


def trim(exc: BaseException, filename: str) -> BaseException:
    """Mark ``exc`` (raised by a cell compiled as ``filename``) to show the user's frames only.

    Exceptions chained to it (``__cause__``, ``__context__``) lose their frames before the
    cell's, or all of them when they never ran in the cell.  Returns ``exc``.
    """
    start = cell_frames(exc.__traceback__, filename)
    try:
        setattr(exc, _MARK, start if start is not None else _NO_FRAMES)
    except (AttributeError, TypeError):  # an exception type without a __dict__: shown as before
        return exc
    exc.__traceback__ = start
    seen = {id(exc)}
    chained = [e for e in (exc.__cause__, exc.__context__) if e is not None]
    while chained:
        link = chained.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        link.__traceback__ = cell_frames(link.__traceback__, filename)
        chained.extend(e for e in (link.__cause__, link.__context__) if e is not None)
    return exc


def _user_part(evalue: Any, etb: TracebackType | None) -> tuple[bool, TracebackType | None]:
    """``(marked, traceback to show)`` for an exception :func:`trim` marked."""
    start = getattr(evalue, _MARK, None) if isinstance(evalue, BaseException) else None
    if start is None:
        return False, etb
    if start == _NO_FRAMES:
        return True, None
    tb = etb
    while tb is not None and tb is not start:
        tb = tb.tb_next
    return True, tb if tb is not None else etb


def install(shell: Any) -> None:
    """Let ``shell`` show marked exceptions from the user's frame on (idempotent; cheap to call per failure)."""
    formatter = getattr(shell, "InteractiveTB", None)
    if formatter is None:
        return
    current = formatter.structured_traceback
    if getattr(current, "_sci_ext_trimmed", False):
        return

    def structured_traceback(etype: Any, evalue: Any, etb: Any = None, tb_offset: Any = None, *args: Any,
                             **kwargs: Any) -> Any:  # fmt: skip
        marked, tb = _user_part(evalue, etb)
        if marked:
            return current(etype, evalue, tb, 0, *args, **kwargs)
        return current(etype, evalue, etb, tb_offset, *args, **kwargs)

    structured_traceback._sci_ext_trimmed = True  # type: ignore[attr-defined]
    formatter.structured_traceback = structured_traceback


def uninstall(shell: Any) -> None:
    """Undo :func:`install` (``%unload_ext``)."""
    formatter = getattr(shell, "InteractiveTB", None)
    if formatter is not None and getattr(formatter.__dict__.get("structured_traceback"), "_sci_ext_trimmed", False):
        del formatter.structured_traceback
