"""``handle_errors``: classify, record and log an error, then degrade gracefully.

The outermost decorator of a pipeline step: whatever escaped the retries is
classified (:func:`classify_error`), recorded (a bounded list of recent errors that
the status API and dashboard read, plus the ``on_error`` listeners that telemetry
turns into ``sci_errors_total{category}``), logged as one structured line, and then
either re-raised or replaced by the fallback.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from .classify import classify_error
from .hooks import ErrorRecord, current_correlation_id, on_error

__all__ = ["clear_recent_errors", "handle_errors", "recent_errors", "record_error"]

P = ParamSpec("P")
R = TypeVar("R")

_log = logging.getLogger("sci_ext.errors")

#: How many recent errors are kept in memory for status pages.
RECENT_ERRORS_KEPT = 200
_recent: deque[ErrorRecord] = deque(maxlen=RECENT_ERRORS_KEPT)
_recent_lock = threading.Lock()


def record_error(exc: BaseException, where: str, *, level: int = logging.ERROR) -> ErrorRecord:
    """Classify ``exc``, keep it among the recent errors, tell listeners and log one line."""
    from ..security.redact import shorten  # redact first, then cut (a cut value is no longer recognised)

    category = str(classify_error(exc))
    record = ErrorRecord(
        where=where,
        category=category,
        error_type=type(exc).__name__,
        message=shorten(str(exc), 500),
        correlation_id=current_correlation_id(),
        timestamp=time.time(),
    )
    with _recent_lock:
        _recent.append(record)
    _log.log(
        level,
        "%s failed: %s: %s [%s]",
        where,
        record.error_type,
        record.message,
        category,
        extra={
            "where": where,
            "category": category,
            "error_type": record.error_type,
            "correlation_id": record.correlation_id,
        },
    )
    on_error.emit(record)
    return record


def recent_errors(limit: int | None = None) -> list[ErrorRecord]:
    """The most recent recorded errors, oldest first."""
    with _recent_lock:
        items = list(_recent)
    return items[-limit:] if limit else items


def clear_recent_errors() -> None:
    """Forget the recorded errors."""
    with _recent_lock:
        _recent.clear()


def handle_errors(
    fallback: Any = None,
    reraise: bool = False,
    *,
    on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    level: int = logging.ERROR,
    name: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: on an error of type ``on``, record it and return ``fallback``.

    ``fallback`` is returned as is, or, when callable, called with the exception
    (``fallback=lambda exc: []``).  ``reraise=True`` records and re-raises instead.
    ``KeyboardInterrupt`` and ``SystemExit`` always propagate untouched.  Works on
    sync and async functions and keeps their signature.

    >>> @handle_errors(fallback="offline")
    ... def ask() -> str:
    ...     raise ConnectionError("no route")
    >>> ask()
    'offline'
    """
    catch = on if isinstance(on, tuple) else (on,)
    for klass in catch:
        if not (isinstance(klass, type) and issubclass(klass, BaseException)):
            raise TypeError(f"handle_errors: on= expects exception classes, got {klass!r}")
    if any(not issubclass(klass, Exception) for klass in catch):
        raise ValueError("handle_errors: on= may only name Exception subclasses (never KeyboardInterrupt)")

    def degrade(exc: Exception, where: str) -> Any:
        record_error(exc, where, level=level)
        if reraise:
            raise exc
        return fallback(exc) if callable(fallback) else fallback

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        where: str = name or getattr(fn, "__qualname__", None) or repr(fn)
        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await afn(*args, **kwargs)
                except catch as exc:
                    return degrade(cast(Exception, exc), where)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except catch as exc:
                return cast(R, degrade(cast(Exception, exc), where))

        return wrapper

    return decorator
