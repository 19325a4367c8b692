"""The usage book of this process: every recorded call, tables per model, per cell, since a time.

:func:`record` is the one path a call takes after the SDK returns: price it, add it
to the book, charge the budgets, feed the cache-savings collectors and emit
:data:`~.events.on_llm_call` (the history writer and the metrics listen there).
:func:`get_llm_usage` returns the tables ``%sci_llm`` prints.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from . import budgets, prices, savings
from .events import TOKEN_KINDS, LLMCall, LLMSaved, on_llm_call, on_llm_saved
from .settings import current as current_settings

__all__ = ["BOOK", "UsageBook", "get_llm_usage", "record", "summarize"]

_log = logging.getLogger("sci_ext.llm")

#: Calls kept in memory per process (the machine-wide history keeps them all).
MAX_CALLS = 100_000


class UsageBook:
    """The calls and cache savings of this process, newest last."""

    def __init__(self, max_calls: int = MAX_CALLS) -> None:
        self.calls: deque[LLMCall] = deque(maxlen=max_calls)
        self.saved: deque[LLMSaved] = deque(maxlen=max_calls)
        self.last_cell: str | None = None
        self.lock = threading.Lock()

    def add(self, call: LLMCall) -> None:
        """Keep ``call``."""
        self.calls.append(call)  # deque.append is atomic

    def add_saved(self, saved: LLMSaved) -> None:
        """Keep a cache saving."""
        self.saved.append(saved)

    def reset(self) -> None:
        """Forget every call and saving of this process."""
        self.calls.clear()
        self.saved.clear()
        self.last_cell = None


BOOK = UsageBook()


def record(call: LLMCall) -> LLMCall:
    """Price ``call``, keep it, charge budgets, feed cache-savings collectors and emit it."""
    settings = current_settings()
    if call.cost_usd is None and call.status not in ("blocked", "refused"):
        _price(call, settings)
    BOOK.add(call)
    if call.cost_usd:
        budgets.charge(settings, call.cost_usd)
    savings.add(call)
    on_llm_call.emit(call)
    return call


def _price(call: LLMCall, settings: Any) -> None:
    """The cost of ``call`` by the model served, else the one requested; one line for what stays unknown."""
    tokens = call.tokens()
    if call.status != "ok" and tokens and call.output is None:
        if _once(("cut", call.provider, call.model)):  # a stream that broke off before its final counts
            _log.warning(
                "sci_ext: a %s stream (%s) broke off before it reported its output tokens (%s); its cost is unknown",
                call.provider, call.model, call.error or call.status,
            )  # fmt: skip
        return
    if not tokens:
        if call.status == "ok" and _once(("no-usage", call.provider, call.model)):
            _log.warning(
                "sci_ext: a %s call (%s) reported no token usage (a provider or proxy that leaves it out, or a stream "
                "cut or read without usage); its tokens and cost are unknown", call.provider, call.model,
            )  # fmt: skip
        return
    call.cost_usd = prices.cost(call.provider, call.model, tokens, settings.prices)
    if call.cost_usd is None and call.model_requested and call.model_requested != call.model:
        call.cost_usd = prices.cost(call.provider, call.model_requested, tokens, settings.prices)
    if call.cost_usd is None:
        line = prices.unknown_note(call.provider, call.model)
        if line:
            _log.warning(line)


_said: set[tuple[str, str, str]] = set()


def _once(key: tuple[str, str, str]) -> bool:
    if key in _said or len(_said) > 10_000:
        return False
    _said.add(key)
    return True


def _saved_listener(saved: LLMSaved) -> None:
    BOOK.add_saved(saved)


on_llm_saved.add(_saved_listener)


def _percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summarize(calls: Iterable[LLMCall]) -> dict[str, Any]:
    """Tables of ``calls``: ``{"models": [...], "total": {...}}`` (one row per provider and model)."""
    groups: dict[tuple[str, str], list[LLMCall]] = {}
    for call in calls:
        groups.setdefault((call.provider, call.model), []).append(call)
    rows = [_row(provider, model, group) for (provider, model), group in sorted(groups.items())]
    everything = [c for group in groups.values() for c in group]
    total = _row("", "total", everything)
    return {"models": rows, "total": total}


def _row(provider: str, model: str, calls: list[LLMCall]) -> dict[str, Any]:
    row: dict[str, Any] = {"provider": provider, "model": model, "calls": len(calls)}
    row["errors"] = sum(1 for c in calls if c.status not in ("ok", "blocked"))
    row["blocked"] = sum(1 for c in calls if c.status == "blocked")
    row["refused"] = sum(1 for c in calls if c.status == "refused")
    asked = {c.model_requested for c in calls if c.model_requested and c.model_requested != model}
    row["requested"] = sorted(asked) if provider else []  # the total row names no model
    row["attempts"] = sum(c.attempts for c in calls)
    row["rate_limited"] = sum(c.rate_limited for c in calls)
    row["server_errors"] = sum(c.server_errors for c in calls)
    for kind in TOKEN_KINDS:
        row[kind] = sum(getattr(c, kind) or 0 for c in calls)
    known = [c.cost_usd for c in calls if c.cost_usd is not None]
    row["cost_usd"] = sum(known) if known else (None if calls and any(c.status == "ok" for c in calls) else 0.0)
    row["unknown_cost_calls"] = sum(1 for c in calls if c.cost_usd is None and c.status == "ok")
    durations = [c.duration for c in calls if c.status != "blocked"]
    row["p50_seconds"] = _percentile(durations, 0.5)
    row["p95_seconds"] = _percentile(durations, 0.95)
    return row


def _saved_total(saved: Iterable[LLMSaved]) -> dict[str, Any]:
    items = list(saved)
    return {
        "hits": len(items),
        "calls": sum(s.calls for s in items),
        "cost_usd": sum(s.cost_usd for s in items),
        "unknown_cost_calls": sum(s.unknown_cost_calls for s in items),
    }


def get_llm_usage(
    *, since: float | None = None, correlation_id: str | None = None, cell: bool = False, model: str | None = None
) -> dict[str, Any]:
    """LLM usage of this process, as ``%sci_llm`` shows it.

    Args:
        since: only calls started at or after this unix time.
        correlation_id: only the calls of this cell run.
        cell: only the calls of the last finished cell (``%sci_llm --cell``).
        model: only the calls that requested this model or were served by it (``gpt-4o-mini`` finds
            the calls answered by ``gpt-4o-mini-2024-07-18``).

    Returns ``{"models": [row, ...], "total": row, "saved": {...}, "budgets": [...],
    "price_table": str}``; a row holds ``provider``, ``model``, ``calls``, ``errors``,
    ``blocked``, the token kinds, ``cost_usd`` (None when no call had a known price),
    ``unknown_cost_calls``, ``p50_seconds``, ``p95_seconds``, ``refused`` (by a retry bound or a
    breaker), ``attempts``, ``rate_limited``, ``server_errors`` and ``requested`` (the models asked for).
    """
    if cell:
        correlation_id = BOOK.last_cell
        if correlation_id is None:
            correlation_id = "<no cell yet>"
    calls: Iterable[LLMCall] = list(BOOK.calls)
    saved: Iterable[LLMSaved] = list(BOOK.saved)
    if since is not None:
        calls = [c for c in calls if c.started >= since]
    if model is not None:
        calls = [c for c in calls if model in c.models()]
    if correlation_id is not None:
        calls = [c for c in calls if c.correlation_id == correlation_id]
        saved = [s for s in saved if s.correlation_id == correlation_id]
    out = summarize(calls)
    out["saved"] = _saved_total(saved)
    settings = current_settings()
    try:
        out["budgets"] = budgets.status(settings)
    except Exception as exc:  # an unusable state dir must not hide the usage
        out["budgets"] = [{"budget": "?", "error": str(exc)}]
    out["price_table"] = prices.table_version()
    out["generated"] = time.time()
    return out
