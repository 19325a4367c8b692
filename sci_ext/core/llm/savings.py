"""Cache savings: what the LLM calls behind a cached result cost when it was computed.

The cache knows nothing of LLMs: it asks registered annotators for an opaque dict
when it starts computing (:func:`sci_ext.core.cache.annotate.begin`), stores
what they return beside the entry, and hands it back through an event on every hit.
This module is the ``llm`` annotator: while a cached computation runs, every call
recorded in its context counts towards it; on a hit the stored counts become an
:class:`~.events.LLMSaved`.
"""

from __future__ import annotations

import contextvars
from typing import Any

from .events import LLMCall, LLMSaved, on_llm_saved

__all__ = ["Collector", "add", "install", "on_hit"]


class Collector:
    """Calls and cost recorded while one cached computation ran."""

    __slots__ = ("calls", "cost_usd", "unknown")

    def __init__(self) -> None:
        self.calls = 0
        self.cost_usd = 0.0
        self.unknown = 0


_active: contextvars.ContextVar[tuple[Collector, ...]] = contextvars.ContextVar("sci_ext_llm_collectors", default=())


def add(call: LLMCall) -> None:
    """Count ``call`` in every computation running in this context (refused calls cost nothing)."""
    active = _active.get()
    if not active or call.status == "blocked":
        return
    for collector in active:
        collector.calls += 1
        if call.cost_usd is None:
            collector.unknown += call.status == "ok"
        else:
            collector.cost_usd += call.cost_usd


class _Annotator:
    """The ``llm`` annotator of the cache (see :mod:`sci_ext.core.cache.annotate`)."""

    def begin(self) -> Any:
        collector = Collector()
        return collector, _active.set((*_active.get(), collector))

    def end(self, handle: Any) -> dict[str, Any] | None:
        collector, token = handle
        try:
            _active.reset(token)
        except ValueError:  # ended in another context: drop this collector only
            _active.set(tuple(c for c in _active.get() if c is not collector))
        if not collector.calls:
            return None
        return {"calls": collector.calls, "cost_usd": collector.cost_usd, "unknown_cost_calls": collector.unknown}


def on_hit(event: Any) -> None:
    """A cache hit handed back what the ``llm`` annotator stored: count it as saved."""
    annotation = event.annotations.get("llm")
    source, name = event.source, event.name
    if not isinstance(annotation, dict):
        return
    from ..context import current

    try:
        saved = LLMSaved(
            source=source,
            name=name,
            calls=int(annotation.get("calls", 0)),
            cost_usd=float(annotation.get("cost_usd", 0.0)),
            unknown_cost_calls=int(annotation.get("unknown_cost_calls", 0)),
            correlation_id=current().correlation_id,
        )
    except (TypeError, ValueError):
        return
    if saved.calls:
        on_llm_saved.emit(saved)


_installed: list[Any] = []


def install() -> None:
    """Register the annotator with the cache (idempotent)."""
    if _installed:
        return
    from ..cache import annotate

    _installed.append(annotate.register("llm", _Annotator()))
    _installed.append(annotate.on_annotated_hit.add(on_hit))


def uninstall() -> None:
    """Remove the annotator from the cache."""
    while _installed:
        _installed.pop()()
