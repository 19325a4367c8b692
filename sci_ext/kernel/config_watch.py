"""Hot reload of the config files, checked when a cell starts: a ``stat`` per file, no thread.

A watcher thread (:meth:`~sci_ext.core.config.ConfigManager.start_watching`) would
have to start at ``%load_ext`` and would need the configuration (and its 14 ms of
imports) at once.  In a kernel the configuration only matters while a cell runs, so
``pre_run_cell`` does what one tick of the thread did: it compares the config files'
mtime and size with what the manager last read and reloads on a change
(:meth:`~sci_ext.core.config.ConfigManager.check_files`), before the cell's code can
read a setting.  Like the thread it looks at most once per
``core.reload_interval_seconds``: finding the project file walks up the directories
with trust checks (~0.3 ms), too much for every cell of a loop of quick cells; a
change is seen by the first cell that starts at least that long after the last look
(the thread saw it within the same interval, but also while no cell ran, when
nothing reads the configuration).  While nothing has read the configuration yet there is no manager and
nothing to reload: the first read sees the files as they are then.

What a reload did is printed to stderr in the cell's output (``config reloaded (...)``
or ``config change rejected, keeping the previous config: ...``), and an invalid
configuration is reported once, at the end of the cell that first read it.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from .state import KernelState

__all__ = ["ConfigWatch", "register"]

log = logging.getLogger("sci_ext.config")


class ConfigWatch:
    """The per-cell check of one shell."""

    def __init__(self) -> None:
        self.manager: Any = None
        self.pending: list[str] = []
        self._unsubscribe: Any = None
        self._next_check = 0.0  # time.monotonic() of the next look at the files

    def _manager(self) -> Any:
        config = sys.modules.get("sci_ext.core.config")  # not imported: nothing was read yet
        if config is None:
            return None
        manager = config.current_config_manager()
        if manager is not None and manager is not self.manager:
            self._attach(manager)
        return manager

    def _attach(self, manager: Any) -> None:
        self.close()
        self.manager = manager
        self._unsubscribe = manager.subscribe(self._on_event)
        if manager.last_error:
            self.pending.append(f"sci_ext: config invalid, using defaults: {manager.last_error}")

    def _on_event(self, event: Any) -> None:
        if event.origin != "watch":
            return
        if event.kind == "rejected":
            self.pending.append(f"sci_ext: config change rejected, keeping the previous config: {event.error}")
        else:
            more = " ..." if len(event.changed) > 5 else ""
            self.pending.append(f"sci_ext: config reloaded ({', '.join(event.changed[:5])}{more})")

    def pre_run_cell(self, info: Any = None) -> None:
        """Reload the configuration if a file changed since it was read (``core.hot_reload``)."""
        manager = self._manager()
        if manager is not None:
            core = manager.config.core
            now = time.monotonic()
            if core.hot_reload and now >= self._next_check:
                try:
                    manager.check_files()
                except Exception:  # a check must never stop the cell
                    log.exception("config check failed")
                self._next_check = time.monotonic() + float(manager.config.core.reload_interval_seconds)
        self.report()

    def post_run_cell(self, result: Any = None) -> None:
        """Report a configuration the cell read for the first time, if it is invalid."""
        if self.manager is None:
            self._manager()
            self.report()

    def report(self) -> None:
        """Print what happened to the configuration since the last report."""
        while self.pending:
            print(self.pending.pop(0), file=sys.stderr)

    def close(self) -> None:
        """Stop listening to the manager."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.manager = None


def register(ipython: Any, state: KernelState) -> None:
    """Check the config files at every cell start (undone by ``%unload_ext``)."""
    watch = ConfigWatch()
    state.add_event("pre_run_cell", watch.pre_run_cell)
    state.add_event("post_run_cell", watch.post_run_cell)
    state.on_close(watch.close)
