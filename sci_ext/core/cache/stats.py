"""Counters and events of every cache lookup: the hook telemetry feeds on.

Each lookup records one event ``(source, layer, result)`` (``source``: ``cell``
or ``function``; ``layer``: ``memory``, ``disk`` or ``redis``; ``result``:
``hit``, ``miss``, ``store`` or ``error``).  :func:`cache_counters` returns the
totals of this process, the shape of Prometheus'
``sci_cache_requests_total{layer,result}``; :func:`subscribe` lets a later
telemetry module turn events into metrics without this package importing it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CacheEvent", "cache_counters", "record", "reset_counters", "subscribe"]


@dataclass(frozen=True)
class CacheEvent:
    """One cache lookup or store."""

    source: str
    layer: str
    result: str
    name: str = ""
    nbytes: int = 0


Listener = Callable[[CacheEvent], None]

_lock = threading.Lock()
_counters: Counter[tuple[str, str]] = Counter()
_listeners: list[Listener] = []


def record(event: CacheEvent) -> None:
    """Count ``event`` and pass it to every listener (a failing listener is dropped from this call only)."""
    with _lock:
        _counters[(event.layer, event.result)] += 1
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # noqa: S112  # nosec B112  # telemetry must never break a cache lookup
            continue


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` with every future event; returns a function that unsubscribes."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def cache_counters() -> dict[tuple[str, str], int]:
    """``{(layer, result): count}`` of this process since start (or the last reset)."""
    with _lock:
        return dict(_counters)


def reset_counters() -> None:
    """Zero the counters (tests, and ``%sci_cache clear --all``)."""
    with _lock:
        _counters.clear()


def cache_size_bytes() -> int:
    """Bytes used by the configured disk cache (``sci_cache_size_bytes``); 0 if it cannot be read."""
    from ..config import get_config
    from .layered import get_disk_store

    cfg = get_config().cache
    try:
        return get_disk_store(cfg.dir, cfg.size_limit_bytes).volume()
    except Exception:  # a gauge must never raise
        return 0
