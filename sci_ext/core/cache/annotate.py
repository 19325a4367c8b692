"""Annotations: what listeners want remembered about a computation, stored with its cache entry.

The cache does not know who annotates.  A listener (LLM accounting, for one)
registers an annotator: :func:`begin` asks every annotator for a handle when a
cached computation starts, :func:`end` collects what each returns when it finished
(a JSON-ready value, or ``None`` for nothing to say), and the cache stores that dict
beside the entry.  When an entry with annotations is served from the cache,
:func:`hit` emits an :class:`AnnotatedHit` on :data:`on_annotated_hit`.  With no
annotator registered, :func:`begin` returns ``None`` and nothing is stored.

>>> class Count:
...     def begin(self): return None
...     def end(self, handle): return {"n": 1}
>>> remove = register("demo", Count())
>>> end(begin())
{'demo': {'n': 1}}
>>> remove()
>>> begin() is None
True
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..events import Listeners

__all__ = ["AnnotatedHit", "Annotator", "begin", "end", "hit", "on_annotated_hit", "register"]

_log = logging.getLogger("sci_ext.cache")


class Annotator(Protocol):
    """Something that watches a computation: ``end(begin())`` is what it wants stored."""

    def begin(self) -> Any:
        """Start watching; the return value is handed to :meth:`end`."""
        ...

    def end(self, handle: Any) -> Any:
        """Stop watching; return a JSON-ready value to store, or ``None``."""
        ...


@dataclass(frozen=True)
class AnnotatedHit:
    """An entry with annotations was served: ``source`` is ``cell`` or ``function``."""

    source: str
    name: str
    annotations: dict[str, Any]


on_annotated_hit: Listeners[AnnotatedHit] = Listeners("cache_annotated_hit")

_lock = threading.Lock()
_annotators: dict[str, Annotator] = {}


def register(name: str, annotator: Annotator) -> Callable[[], None]:
    """Add ``annotator`` under ``name`` (its value is stored as ``annotations[name]``); returns a remover."""
    with _lock:
        _annotators[name] = annotator

    def remove() -> None:
        with _lock:
            if _annotators.get(name) is annotator:
                del _annotators[name]

    return remove


def begin() -> dict[str, Any] | None:
    """Handles of every annotator for a computation that starts now (``None`` when there is none)."""
    if not _annotators:
        return None
    handles = {}
    for name, annotator in list(_annotators.items()):
        try:
            handles[name] = (annotator, annotator.begin())
        except Exception:
            _log.exception("sci_ext cache annotator %r failed to begin", name)
    return handles


def end(handles: dict[str, Any] | None) -> dict[str, Any]:
    """What the annotators of :func:`begin` want stored (empty when nothing)."""
    out: dict[str, Any] = {}
    if not handles:
        return out
    for name, (annotator, handle) in reversed(list(handles.items())):
        try:
            value = annotator.end(handle)
        except Exception:
            _log.exception("sci_ext cache annotator %r failed to end", name)
            continue
        if value is not None:
            out[name] = value
    return out


def hit(source: str, name: str, annotations: Any) -> None:
    """An entry was served from the cache: hand its annotations to the listeners."""
    if annotations and isinstance(annotations, dict):
        on_annotated_hit.emit(AnnotatedHit(source, name, annotations))
