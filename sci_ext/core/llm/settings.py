"""The ``llm`` settings, parsed once per configuration (the call path reads them on every call)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import get_config
from ..config.sections import parse_budgets, parse_prices

__all__ = ["LLMSettings", "current"]


@dataclass(frozen=True)
class LLMSettings:
    """The parsed ``llm`` section, plus the state dir the shared stores live in."""

    instrument: bool = True
    notify_cost_usd: float | None = 0.0
    budget_usd: float | None = None
    budgets: dict[str, float] = field(default_factory=dict)
    redis_url: str | None = None
    alert_ratio: float = 0.8
    prices: dict[str, tuple[float, ...]] = field(default_factory=dict)
    model_labels: tuple[str, ...] = ()
    max_model_labels: int = 20
    history: bool = True
    state_dir: str = ""
    metrics_enabled: bool = True
    max_attempts: int | None = 20
    max_retry_seconds: float | None = 600.0
    max_failed_attempts: int | None = 500
    breakers: tuple[str, ...] = ()


_cache: tuple[Any, LLMSettings] | None = None


def current() -> LLMSettings:
    """The settings of the current configuration (re-parsed only when the configuration changed)."""
    global _cache
    cfg = get_config()
    cached = _cache
    if cached is not None and cached[0] is cfg:
        return cached[1]
    llm = cfg.llm
    parsed = LLMSettings(
        instrument=llm.instrument,
        notify_cost_usd=llm.notify_cost_usd,
        budget_usd=llm.budget_usd,
        budgets=parse_budgets(llm.budgets),
        redis_url=llm.redis_url,
        alert_ratio=llm.alert_ratio,
        prices=parse_prices(llm.prices),
        model_labels=tuple(llm.model_labels),
        max_model_labels=llm.max_model_labels,
        history=llm.history,
        state_dir=cfg.core.state_dir,
        metrics_enabled=cfg.monitoring.metrics_enabled,
        max_attempts=llm.max_attempts,
        max_retry_seconds=llm.max_retry_seconds,
        max_failed_attempts=llm.max_failed_attempts,
        breakers=tuple(e.strip() for e in llm.breaker),
    )
    _cache = (cfg, parsed)
    return parsed
