"""``performance_monitor``: time a function, count its errors, log one line.

Usable bare (``@performance_monitor``) or configured (``@performance_monitor(name="step")``),
on sync and async functions; the wrapper keeps the signature and type hints
(:func:`functools.wraps`).  Each call observes ``sci_function_duration_seconds{function}``
(the series is looked up once, when the function is decorated), feeds the alert
windows, and logs one line to ``sci_ext.perf``: DEBUG on success (so the default INFO
log stays quiet and cheap), ERROR on failure, which also counts
``sci_errors_total{category}``.  The exception is re-raised unchanged.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast, overload

__all__ = ["performance_monitor"]

P = ParamSpec("P")
R = TypeVar("R")

_log = logging.getLogger("sci_ext.perf")


def _function_name(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', getattr(func, '__name__', '?'))}"


def _failed(name: str, exc: BaseException, duration: float) -> None:
    from ..resilience.classify import classify_error
    from .metrics import get_metrics

    category = str(classify_error(exc))
    metrics = get_metrics()
    metrics.errors.labels(metrics.categories(category)).inc()
    from .alerts import get_monitor

    get_monitor().note_error()
    _log.error(
        "%s failed after %.3f s: %s: %s [%s]",
        name,
        duration,
        type(exc).__name__,
        str(exc)[:300],
        category,
        extra={"function": name, "duration_seconds": round(duration, 6), "category": category,
               "error_type": type(exc).__name__},
    )  # fmt: skip


@overload
def performance_monitor(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def performance_monitor(
    func: None = None, /, *, name: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def performance_monitor(func: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Record duration, errors and one log line for every call of the decorated function.

    ``name`` is the ``function`` label and the name in the log (default
    ``module.qualname``); label values are bounded (see :mod:`.metrics`).
    """
    if func is None:
        return lambda f: _decorate(f, name)
    if not callable(func):
        raise TypeError(f"performance_monitor: expected a function, got {type(func).__name__}")
    return _decorate(func, name)


def _decorate(func: Callable[..., Any], name: str | None) -> Callable[..., Any]:
    from .alerts import get_monitor
    from .metrics import get_metrics

    label = name or _function_name(func)
    observe = get_metrics().function_child(label).observe
    note_run = get_monitor().note_run
    perf_counter = time.perf_counter
    debug_enabled = _log.isEnabledFor

    def finish(start: float, exc: BaseException | None) -> None:
        """What every call records, for the sync and the async wrapper alike."""
        duration = perf_counter() - start
        observe(duration)
        note_run(duration)
        if exc is not None:
            if isinstance(exc, Exception):  # KeyboardInterrupt/SystemExit are timed, not errors
                _failed(label, exc, duration)
        elif debug_enabled(logging.DEBUG):
            _log.debug("%s took %.6f s", label, duration, extra={"function": label, "duration_seconds": duration})

    if inspect.iscoroutinefunction(func):
        afunc = cast(Callable[..., Awaitable[Any]], func)

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            start = perf_counter()
            try:
                result = await afunc(*args, **kwargs)
            except BaseException as exc:
                finish(start, exc)
                raise
            finish(start, None)
            return result

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            finish(start, exc)
            raise
        finish(start, None)
        return result

    return wrapper
