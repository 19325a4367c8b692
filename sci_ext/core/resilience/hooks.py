"""Listeners for what the resilience layer does: retries, breaker changes, errors, waits.

Telemetry (Prometheus ``sci_retry_attempts_total{name,error_type}``,
``sci_breaker_state{name}``, ``sci_errors_total{category}``) and the dashboard
subscribe here; the resilience code never imports them.  A listener that raises is
logged and ignored: instrumentation must not break the call it observes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import context
from ..events import Listeners, channel

__all__ = [
    "BreakerEvent",
    "ErrorRecord",
    "Listeners",
    "RateLimitEvent",
    "RetryEvent",
    "current_correlation_id",
    "on_breaker_change",
    "on_error",
    "on_rate_limit_wait",
    "on_retry",
    "set_correlation_id_provider",
]


@dataclass(frozen=True)
class RetryEvent:
    """One failed attempt that will be retried after ``wait`` seconds."""

    name: str
    attempt: int
    max_attempts: int
    error: BaseException
    category: str
    wait: float

    @property
    def error_type(self) -> str:
        """The exception's class name (the ``error_type`` metric label)."""
        return type(self.error).__name__


@dataclass(frozen=True)
class BreakerEvent:
    """A circuit breaker changed state (``closed``, ``open`` or ``half_open``)."""

    name: str
    old_state: str
    new_state: str
    failures: int


@dataclass(frozen=True)
class ErrorRecord:
    """An error :func:`handle_errors` (or ``%%guarded``) recorded."""

    where: str
    category: str
    error_type: str
    message: str
    correlation_id: str | None
    timestamp: float


@dataclass(frozen=True)
class RateLimitEvent:
    """A caller waits ``wait`` seconds for a token of the bucket ``name``."""

    name: str
    wait: float


#: Every retry of ``retry_with_backoff`` and ``%%guarded``.
on_retry: Listeners[RetryEvent] = channel("retry")
#: Every state change of a circuit breaker made in this process.
on_breaker_change: Listeners[BreakerEvent] = channel("breaker")
#: Every error recorded by ``handle_errors`` and ``%%guarded``.
on_error: Listeners[ErrorRecord] = channel("error")
#: Every time a caller blocks on a rate limiter.
on_rate_limit_wait: Listeners[RateLimitEvent] = channel("rate limit")

_correlation_id_provider: Callable[[], str | None] | None = None


def set_correlation_id_provider(provider: Callable[[], str | None] | None) -> None:
    """Let telemetry tell error records the current cell's correlation id."""
    global _correlation_id_provider
    _correlation_id_provider = provider


def current_correlation_id() -> str | None:
    """The correlation id of the running cell (:mod:`sci_ext.core.context`, or a provider)."""
    provider = _correlation_id_provider
    if provider is None:
        return context.current().correlation_id
    try:
        return provider()
    except Exception:
        return None
