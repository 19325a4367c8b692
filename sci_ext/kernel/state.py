"""Per-shell state of the extension: hooks and background work to undo on unload."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["KernelState"]


class KernelState:
    """What ``%load_ext sci_ext`` set up on one IPython shell."""

    _by_shell: ClassVar[dict[int, KernelState]] = {}

    def __init__(self, ipython: InteractiveShell) -> None:
        self.ipython = ipython
        self.loaded = False
        #: Loaded by a notebook runner (nbval --sci-cache, ``jupyter sci run``): the outputs
        #: must be a plain run's, so notices about the runner's cache (LLM calls a hit saved)
        #: never go into them, and the others only once the notebook loads sci_ext itself.
        self.started_by_runner = False
        #: The notebook (or user) ran ``%load_ext sci_ext``.
        self.user_loaded = False
        self._cleanups: list[Callable[[], None]] = []

    @classmethod
    def get(cls, ipython: InteractiveShell) -> KernelState:
        """The state of ``ipython``, created on first use."""
        state = cls._by_shell.get(id(ipython))
        if state is None:
            state = cls._by_shell[id(ipython)] = cls(ipython)
        return state

    def on_close(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` when the extension is unloaded."""
        self._cleanups.append(cleanup)

    def add_event(self, event: str, callback: Callable[..., Any]) -> None:
        """Register an IPython event callback that is removed on unload."""
        self.ipython.events.register(event, callback)
        self.on_close(lambda: self.ipython.events.unregister(event, callback))

    def close(self) -> None:
        """Run every cleanup (last registered first) and forget this shell."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                cleanup()
            except (ValueError, KeyError):
                pass  # already removed
        self.loaded = False
        self._by_shell.pop(id(self.ipython), None)
