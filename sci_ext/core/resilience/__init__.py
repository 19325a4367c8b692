"""Resilience: error classification, retries, circuit breakers, rate limits, fallbacks.

Everything here works without Jupyter; ``%%guarded`` is a thin layer over it.
Heavy dependencies (tenacity, redis) load on first use: tenacity only
after a first failure, the SQLite state when the first shared breaker or bucket is made.

>>> from sci_ext.core.resilience import retry_with_backoff, circuit_breaker, handle_errors
"""

from __future__ import annotations

from .breaker import CLOSED, HALF_OPEN, OPEN, STATE_VALUES, CircuitBreaker, breakers, circuit_breaker, get_breaker
from .classify import RETRYABLE, ErrorCategory, classify_error, http_status, is_transient, retry_after
from .handle import clear_recent_errors, handle_errors, recent_errors, record_error
from .hooks import (
    BreakerEvent,
    ErrorRecord,
    RateLimitEvent,
    RetryEvent,
    on_breaker_change,
    on_error,
    on_rate_limit_wait,
    on_retry,
    set_correlation_id_provider,
)
from .ratelimit import RateLimiter, parse_rate, rate_limiter
from .retry import RetryPolicy, is_testing, make_retry_predicate, retry_with_backoff, set_testing, testing
from .store import DiskStore, MemoryStore, RedisStore, StateStore

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "RETRYABLE",
    "STATE_VALUES",
    "BreakerEvent",
    "CircuitBreaker",
    "DiskStore",
    "ErrorCategory",
    "ErrorRecord",
    "MemoryStore",
    "RateLimitEvent",
    "RateLimiter",
    "RedisStore",
    "RetryEvent",
    "RetryPolicy",
    "StateStore",
    "breakers",
    "circuit_breaker",
    "classify_error",
    "clear_recent_errors",
    "get_breaker",
    "handle_errors",
    "http_status",
    "is_testing",
    "is_transient",
    "make_retry_predicate",
    "on_breaker_change",
    "on_error",
    "on_rate_limit_wait",
    "on_retry",
    "parse_rate",
    "rate_limiter",
    "recent_errors",
    "record_error",
    "retry_after",
    "retry_with_backoff",
    "set_correlation_id_provider",
    "set_testing",
    "testing",
]
