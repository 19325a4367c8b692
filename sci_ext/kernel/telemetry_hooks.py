"""The kernel side of telemetry: a correlation id and a duration for every cell.

``pre_run_cell`` binds a fresh run context (:mod:`sci_ext.core.context`: correlation id,
kernel id, execution count); everything the cell logs, records or retries carries it,
including ``%%guarded`` retries and threads started through ``context.wrap``; asyncio
tasks inherit it by themselves.  ``post_run_cell`` observes
``sci_cell_duration_seconds``, accounts a failed cell (once, even when ``%%guarded``
already recorded its error) and resets the context.  A ``UsageError`` (a typo in a magic's
arguments) is not a failed cell, and the errors of a cell tagged ``raises-exception``
(JupyterLab sends a cell's metadata, tags included, with its execute request) are kept
but are not errors for alerting.  Each cell's start and end go to the alert monitor,
which knows each cell's usual duration (``CellRunningLong``).  Loading the extension also
subscribes telemetry to the features' events (:func:`sci_ext.core.telemetry.install`,
deferred: the first recorded cell starts the background monitor, whose first tick
configures the log and creates the metrics; the first log record or feature event
does that at once); unloading undoes both.
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ..core import context
from ..core.telemetry.subscribe import EXPECTS_ERRORS, record_cell
from .state import KernelState

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["CellTimer", "cell_request_metadata", "register"]

EXPECTED_ERROR_TAG = "raises-exception"  # the tag JupyterLab, nbval and nbclient users put on such cells


def cell_request_metadata(ipython: Any) -> dict[str, Any]:
    """The metadata of the execute request running now (JupyterLab: the cell's metadata and ``cellId``)."""
    kernel = getattr(ipython, "kernel", None)
    if kernel is None:
        return {}
    try:
        parent = kernel.get_parent("shell")
    except TypeError:  # older ipykernel: get_parent() without a channel
        parent = kernel.get_parent()
    except Exception:
        return {}
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _cell_key(info: Any) -> str:
    """What makes two runs "the same cell": its source (an edited cell starts a new history)."""
    import hashlib  # not at %load_ext (its import budget)

    source = getattr(info, "raw_cell", None) or ""
    return hashlib.blake2b(source.encode("utf-8", "replace"), digest_size=12).hexdigest()


def _kernel_id() -> str | None:
    """The kernel's id: ``SCI_EXT_KERNEL_ID`` (set by the server) or the connection file's name."""
    if os.environ.get("SCI_EXT_KERNEL_ID"):
        return os.environ["SCI_EXT_KERNEL_ID"]
    if "ipykernel.kernelapp" not in sys.modules:
        return None  # a plain IPython shell: no kernel, and importing ipykernel would cost ~0.5 s
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:
        return None
    stem = name.rsplit(".", 1)[0]
    return stem[len("kernel-") :] if stem.startswith("kernel-") else stem or None


class CellTimer:
    """The ``pre_run_cell`` / ``post_run_cell`` pair of one shell."""

    def __init__(self, ipython: InteractiveShell) -> None:
        self.ipython = ipython
        self.enabled = True
        # One entry per running cell: a cell may run another (``get_ipython().run_cell``).
        self._runs: list[tuple[contextvars.Token[Any], float, str | None, int]] = []
        self._recorded: str | None = None  # correlation id of the last recorded error

    def note_error(self, record: Any) -> None:
        """``on_error`` listener: remember that this run already recorded its error."""
        self._recorded = record.correlation_id

    def pre(self, info: Any = None) -> None:
        """Start a run: bind a new correlation id with this cell's execution count."""
        if not self.enabled:
            return
        count = self.ipython.execution_count
        if getattr(info, "store_history", False):
            count -= 1  # IPython counts the cell up before it triggers pre_run_cell
        metadata = cell_request_metadata(self.ipython) if not self._runs else {}
        tags = metadata.get("tags")
        extra = {EXPECTS_ERRORS: "1"} if isinstance(tags, list) and EXPECTED_ERROR_TAG in tags else {}
        token = context.bind(execution_count=count, **extra)
        cid = context.current().correlation_id
        self._runs.append((token, time.perf_counter(), cid, count))
        if cid is not None and len(self._runs) == 1:  # a cell's history: top-level runs only
            self._monitor().cell_started(cid, _cell_key(info))

    @staticmethod
    def _monitor() -> Any:
        from ..core.telemetry.alerts import get_monitor

        return get_monitor()

    def post(self, result: Any = None) -> None:
        """End the run: record duration and error, then reset the context."""
        if not self._runs:
            return
        token, start, cid, count = self._runs.pop()
        duration = time.perf_counter() - start
        try:
            error = None
            if result is not None:
                error = result.error_in_exec or result.error_before_exec
            if isinstance(error, KeyboardInterrupt) or not isinstance(error, Exception):
                error = None  # an interrupt is not a failure
            if error is not None and _is_usage_error(error):
                error = None  # a typo in a magic's arguments: IPython said so, nothing failed
            recorded = error is not None and cid is not None and self._recorded == cid
            expected = any(key == EXPECTS_ERRORS for key, _ in context.current().extra)
            record_cell(duration, error, f"cell [{count}]", already_recorded=recorded, expected=expected)
            if cid is not None and not self._runs:
                self._monitor().cell_finished(cid, duration)
        finally:
            context.reset(token)


def _is_usage_error(error: BaseException) -> bool:
    from IPython.core.error import UsageError

    return isinstance(error, UsageError)


def register(ipython: InteractiveShell, state: KernelState) -> None:
    """Install telemetry and the cell hooks on ``ipython`` (undone by ``%unload_ext``).

    Telemetry's subscriptions are made now (by channel name, nothing heavy is imported)
    and the rest is deferred (:func:`sci_ext.core.telemetry.subscribe.install` with
    ``defer=True``): the monitor thread starts when the first cell is recorded; the
    configuration, the log handlers and prometheus_client at its first tick, or when sci_ext
    logs its first record or a feature emits its first event.
    """
    from ..core.events import channel
    from ..core.telemetry.subscribe import install, uninstall

    kernel_id = _kernel_id()
    if kernel_id and context.process_context().kernel_id is None:
        context.set_process_context(kernel_id=kernel_id)
    install(defer=True)
    state.on_close(uninstall)
    timer = CellTimer(ipython)
    state.timer = timer  # type: ignore[attr-defined]
    state.on_close(channel("error").add(timer.note_error))
    state.add_event("pre_run_cell", timer.pre)
    state.add_event("post_run_cell", timer.post)
