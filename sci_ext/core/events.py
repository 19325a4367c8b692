"""Listeners: how features announce what they do without importing who listens.

Features (config, cache, resilience, security, LLM accounting) emit events through a
:class:`Listeners` (named ones come from :func:`channel`, so listeners need not import
the feature); telemetry, the dashboards and the status API add callbacks.  A listener
that raises is logged and ignored: instrumentation must not break the call it
observes.  Emitting with no listener costs one attribute read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Listeners", "channel", "hook_list"]

_log = logging.getLogger("sci_ext.events")

EventT = TypeVar("EventT")


@dataclass
class Listeners(Generic[EventT]):
    """A thread-safe list of callbacks for one kind of event."""

    kind: str
    _callbacks: list[Callable[[EventT], Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, callback: Callable[[EventT], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that removes it."""
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def emit(self, event: EventT) -> None:
        """Deliver ``event`` to every listener; a failing listener is logged, not raised."""
        if not self._callbacks:  # the common case costs one attribute read
            return
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:
                _log.exception("sci_ext %s listener %r failed", self.kind, callback)

    def __len__(self) -> int:
        return len(self._callbacks)


_channels: dict[str, Listeners[Any]] = {}
_channels_lock = threading.Lock()


def channel(kind: str) -> Listeners[Any]:
    """The process-wide :class:`Listeners` called ``kind`` (created on first use).

    Features define their event lists through it (``on_retry = channel("retry")``), so a
    listener can subscribe by name without importing the feature's package (telemetry
    subscribes at ``%load_ext`` without loading tenacity or diskcache).
    """
    found = _channels.get(kind)
    if found is None:
        with _channels_lock:
            found = _channels.setdefault(kind, Listeners(kind))
    return found


_hook_lists: dict[str, list[Any]] = {}


def hook_list(kind: str) -> list[Any]:
    """The process-wide plain list of hooks called ``kind`` (created on first use).

    For features whose hooks take several arguments (``hook(client, reason)``): the
    feature keeps the list and calls its entries, a listener appends to it by name
    without importing the feature (telemetry subscribes to security's auth failures at
    ``%load_ext`` without loading the vault, the audit log and the key store).
    """
    with _channels_lock:
        return _hook_lists.setdefault(kind, [])
