"""``retry_with_backoff``: bounded retries of transient failures, on tenacity.

Why not a bare ``tenacity.retry``?  Three reasons this module exists:

* **Only transient errors are retried** by default (see :func:`classify_error`): a
  401 or a ``ValueError`` fails at once instead of burning the retry budget, and
  ``KeyboardInterrupt``/``SystemExit`` are never retried.
* **Attempts and total time are both bounded**, waits grow exponentially with jitter
  up to ``retry.max_wait``, and a server's ``Retry-After`` is honoured (capped by
  ``retry.max_retry_after``).  Defaults come from the ``retry`` config section when
  a failure happens, so ``%sci_config retry.max_attempts=5`` applies at once.
* **The success path is nearly free**: the function is called directly; tenacity
  (with a fresh retry state for every call, see tenacity #93) only enters after a
  failure.

:func:`set_testing` / :func:`testing` turn waits off (and cap attempts) in tests.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, Union, cast, overload

from ..errors import CircuitOpenError
from .classify import RETRYABLE, ErrorCategory, classify_error, retry_after
from .hooks import RetryEvent, on_retry

__all__ = [
    "RetryOn",
    "RetryPolicy",
    "default_retryable",
    "is_testing",
    "make_retry_predicate",
    "retry_with_backoff",
    "set_testing",
    "testing",
]

P = ParamSpec("P")
R = TypeVar("R")

_log = logging.getLogger("sci_ext.retry")

#: What ``on=`` accepts: exception classes, category names, or a predicate.
RetryOn = Union[  # noqa: UP007 - a runtime alias: `|` of generic aliases fails on Python 3.10
    type[BaseException],
    str,
    Iterable[Union[type[BaseException], str]],  # noqa: UP007
    Callable[[BaseException], bool],
    None,
]

_CATEGORY_NAMES = {category.value: category for category in ErrorCategory}


# ---------------------------------------------------------------- testing switch


@dataclass(frozen=True)
class _TestingMode:
    attempts: int | None
    wait: bool


_testing: _TestingMode | None = None


class set_testing:  # a class so it also works as a context manager, like stamina.set_testing
    """Turn retry (and rate-limit) waits off for tests; also a context manager.

    ``set_testing(True, attempts=1)`` makes every retry loop try at most once and
    never sleep; ``attempts=None`` keeps each decorator's own count.  Leaving the
    ``with`` block (or ``set_testing(False)``) restores the previous mode.
    """

    def __init__(self, active: bool = True, *, attempts: int | None = 1, wait: bool = False) -> None:
        global _testing
        if attempts is not None and attempts < 1:
            raise ValueError(f"set_testing: attempts must be >= 1, got {attempts}")
        self._previous = _testing
        _testing = _TestingMode(attempts, wait) if active else None

    def __enter__(self) -> set_testing:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        global _testing
        _testing = self._previous


def testing(attempts: int | None = 1, *, wait: bool = False) -> set_testing:
    """Testing mode as a context manager: ``with testing(attempts=1): ...``."""
    return set_testing(True, attempts=attempts, wait=wait)


def is_testing() -> bool:
    """True while testing mode is on."""
    return _testing is not None


def waits_disabled() -> bool:
    """True when testing mode turned sleeping off."""
    return _testing is not None and not _testing.wait


def sleep(seconds: float) -> None:
    """``time.sleep`` unless testing mode is on.  In a kernel's main thread SIGINT
    (the stop button) interrupts it at once with ``KeyboardInterrupt``."""
    if seconds > 0 and not waits_disabled():
        time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    """``asyncio.sleep`` unless testing mode is on."""
    if seconds > 0 and not waits_disabled():
        await asyncio.sleep(seconds)


# ---------------------------------------------------------------- telling the user


#: Handlers that only write a file nobody watches (sci_ext's own JSON log): a record that
#: reaches only these is not seen by the user, so the retry notice is still shown.
_FILE_ONLY_HANDLERS = frozenset({"sci_ext.jsonlog"})


def _configured(logger: logging.Logger) -> bool:
    """Whether a record of ``logger`` reaches a handler the user sees (not a ``NullHandler``,
    not sci_ext's own JSON-log file)."""
    current: logging.Logger | None = logger
    while current is not None:
        if any(
            not isinstance(handler, logging.NullHandler) and handler.get_name() not in _FILE_ONLY_HANDLERS
            for handler in current.handlers
        ):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def _log_retry(name: str, event: RetryEvent, exc: BaseException, *, notice: bool = True) -> None:
    """Log one retry as a WARNING on ``sci_ext.retry``; a script with no logging still sees it.

    ``import sci_ext`` gives the ``sci_ext`` logger a ``NullHandler`` (a library leaves
    logging to the application), which also mutes Python's last-resort handler.  A wait
    of seconds with no sign is worse than one line, so, like stamina, a retry is shown
    anyway: when no handler other than a ``NullHandler`` would receive the record (no
    ``logging.basicConfig``, no handler on ``sci_ext`` or the root), it goes to
    :data:`logging.lastResort` (one line on stderr), prefixed with the logger's name.
    Configuring logging routes it through your handlers instead; setting the level of
    ``sci_ext.retry`` above WARNING (or ``logging.lastResort = None``) silences it.
    """
    if not _log.isEnabledFor(logging.WARNING):
        return
    filename, lineno, function, _ = _log.findCaller()
    record = _log.makeRecord(
        _log.name,
        logging.WARNING,
        filename,
        lineno,
        "retrying %s after attempt %d/%d failed with %s: %s; waiting %.2f s",
        (name or "call", event.attempt, event.max_attempts, event.error_type, exc, event.wait),
        None,
        function,
        extra={"retry_name": name, "attempt": event.attempt, "error_type": event.error_type},
    )
    _log.handle(record)
    last_resort = logging.lastResort
    if notice and last_resort is not None and not _configured(_log) and record.levelno >= last_resort.level:
        shown = logging.makeLogRecord(record.__dict__)
        shown.msg, shown.args = f"{_log.name}: {record.getMessage()}", None
        last_resort.handle(shown)


# ---------------------------------------------------------------- what to retry


def default_retryable(exc: BaseException) -> bool:
    """The default of ``on=``: transient categories, except an open breaker (which fails fast)."""
    return isinstance(exc, Exception) and not isinstance(exc, CircuitOpenError) and classify_error(exc) in RETRYABLE


def make_retry_predicate(on: RetryOn) -> Callable[[BaseException], bool]:
    """Turn ``on=`` into ``predicate(exc) -> bool``.

    ``None``: the transient categories.  A class or tuple of classes: ``isinstance``.
    A category name (``"timeout"``) or a list mixing names and classes: any of them.
    A callable that is not a class: used as is.  Non-``Exception`` errors
    (``KeyboardInterrupt``, ``SystemExit``) are never retried, whatever ``on`` says.
    """
    if on is None:
        return default_retryable
    if isinstance(on, (str, type)):
        items: list[Any] = [on]
    elif callable(on):
        user = on
        return lambda exc: isinstance(exc, Exception) and bool(user(exc))
    else:
        items = list(on)
    classes: list[type[BaseException]] = []
    categories: set[ErrorCategory] = set()
    for item in items:
        if isinstance(item, str):
            if item not in _CATEGORY_NAMES:
                raise ValueError(f"on=: unknown error category {item!r} (known: {', '.join(sorted(_CATEGORY_NAMES))})")
            categories.add(_CATEGORY_NAMES[item])
        elif isinstance(item, type) and issubclass(item, BaseException):
            classes.append(item)
        else:
            raise TypeError(f"on=: expected exception classes or category names, got {item!r}")
    class_tuple = tuple(classes)

    def predicate(exc: BaseException) -> bool:
        if not isinstance(exc, Exception):
            return False
        if class_tuple and isinstance(exc, class_tuple):
            return True
        return bool(categories) and classify_error(exc) in categories

    return predicate


# ---------------------------------------------------------------- the policy


@dataclass(frozen=True)
class _Settings:
    max_attempts: int
    initial_wait: float
    max_wait: float
    multiplier: float
    jitter: float
    timeout: float
    max_retry_after: float


def _check_non_negative(name: str, value: float | None) -> None:
    if value is not None and not value >= 0:
        raise ValueError(f"retry_with_backoff: {name} must be >= 0, got {value!r}")


class RetryPolicy:
    """Bounded retries with backoff; settings left ``None`` come from the ``retry`` config.

    ``policy.call(fn, *args)`` runs ``fn`` and retries it; ``await policy.acall(...)``
    does the same for a coroutine function.  ``on_retry(event)`` is called before
    each wait (``%%guarded`` prints its retry lines from it).  Every retry is a
    WARNING on logger ``sci_ext.retry``; ``notice=False`` (for callers that print
    their own retry lines) skips the stderr notice given when logging is not
    configured (see :func:`_log_retry`).
    """

    def __init__(
        self,
        max_attempts: int | None = None,
        *,
        on: RetryOn = None,
        initial_wait: float | None = None,
        max_wait: float | None = None,
        multiplier: float | None = None,
        jitter: float | None = None,
        timeout: float | None = None,
        max_retry_after: float | None = None,
        name: str = "",
        on_retry: Callable[[RetryEvent], Any] | None = None,
        notice: bool = True,
    ) -> None:
        if max_attempts is not None and (not isinstance(max_attempts, int) or max_attempts < 1):
            raise ValueError(f"retry_with_backoff: max_attempts must be an int >= 1, got {max_attempts!r}")
        if not (initial_wait is max_wait is jitter is timeout is max_retry_after is None):
            # Checked only when given: %%guarded builds a policy per cell, mostly with defaults.
            for label, value in (
                ("initial_wait", initial_wait),
                ("max_wait", max_wait),
                ("jitter", jitter),
                ("timeout", timeout),
                ("max_retry_after", max_retry_after),
            ):
                _check_non_negative(label, value)
        if multiplier is not None and not multiplier >= 1:
            raise ValueError(f"retry_with_backoff: multiplier must be >= 1, got {multiplier!r}")
        self.max_attempts = max_attempts
        self.initial_wait = initial_wait
        self.max_wait = max_wait
        self.multiplier = multiplier
        self.jitter = jitter
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self.name = name
        self.on_retry = on_retry
        self.notice = notice
        self.should_retry = make_retry_predicate(on)

    def settings(self) -> _Settings:
        """The effective settings now: explicit values, else the ``retry`` config."""
        from ..config import get_config

        cfg: Any = get_config().retry
        attempts = self.max_attempts if self.max_attempts is not None else cfg.max_attempts
        if _testing is not None and _testing.attempts is not None:
            attempts = min(attempts, _testing.attempts)

        def pick(own: float | None, default: float) -> float:
            return float(default if own is None else own)

        return _Settings(
            max_attempts=int(attempts),
            initial_wait=pick(self.initial_wait, cfg.initial_wait),
            max_wait=pick(self.max_wait, cfg.max_wait),
            multiplier=pick(self.multiplier, cfg.multiplier),
            jitter=pick(self.jitter, cfg.jitter),
            timeout=pick(self.timeout, cfg.timeout),
            max_retry_after=pick(self.max_retry_after, cfg.max_retry_after),
        )

    @staticmethod
    def wait_seconds(settings: _Settings, attempt: int, exc: BaseException | None) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        if exc is not None:
            asked = retry_after(exc)
            if asked is not None:
                return min(asked, settings.max_retry_after)
        backoff = settings.initial_wait * settings.multiplier ** (attempt - 1)
        # Jitter of up to `jitter` seconds, but never more than the backoff itself, so
        # that initial_wait=0 really means "no wait" and tiny waits stay tiny.
        backoff += random.uniform(0, min(settings.jitter, backoff))  # noqa: S311  # nosec B311  # jitter, not crypto
        return min(settings.max_wait, backoff)

    # -- tenacity plumbing, used only after a first failure

    def _retrying_kwargs(self, settings: _Settings, started: float) -> dict[str, Any]:
        import tenacity

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            if waits_disabled():
                return 0.0
            return self.wait_seconds(settings, state.attempt_number, exc)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= settings.max_attempts:
                return True
            # Do not start a wait that would end past the total time budget.
            return time.monotonic() - started + state.upcoming_sleep > settings.timeout

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            if exc is None:  # pragma: no cover - tenacity only sleeps after a failure
                return
            event = RetryEvent(
                name=self.name,
                attempt=state.attempt_number,
                max_attempts=settings.max_attempts,
                error=exc,
                category=str(classify_error(exc)),
                wait=state.upcoming_sleep,
            )
            _log_retry(self.name, event, exc, notice=self.notice)
            if self.on_retry is not None:
                self.on_retry(event)
            on_retry.emit(event)

        return {
            "stop": stop,
            "wait": wait,
            "retry": tenacity.retry_if_exception(self.should_retry),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def _gave_up(self, exc: BaseException, attempts: int) -> None:
        if attempts > 1 and hasattr(exc, "add_note"):
            if isinstance(exc, CircuitOpenError):  # the last attempt never ran: say so, count what did
                note = f"sci_ext: {attempts - 1} attempts failed, then the open breaker refused attempt {attempts}"
            else:
                note = f"sci_ext: gave up after {attempts} attempts ({classify_error(exc)})"
            exc.add_note(note)

    def retry_after_failure(
        self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any], first: BaseException, started: float
    ) -> R:
        """Continue after ``fn(*args, **kwargs)`` failed once with ``first``."""
        import tenacity

        settings = self.settings()
        pending = [first]

        def attempt() -> R:
            if pending:
                raise pending.pop()
            return fn(*args, **kwargs)

        retrying = tenacity.Retrying(sleep=sleep, **self._retrying_kwargs(settings, started))
        try:
            return retrying(attempt)
        except Exception as exc:
            self._gave_up(exc, retrying.statistics.get("attempt_number", 1))
            raise

    async def aretry_after_failure(
        self,
        fn: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        first: BaseException,
        started: float,
    ) -> R:
        """The async twin of :meth:`retry_after_failure`."""
        import tenacity

        settings = self.settings()
        pending = [first]

        async def attempt() -> R:
            if pending:
                raise pending.pop()
            return await fn(*args, **kwargs)

        retrying = tenacity.AsyncRetrying(sleep=async_sleep, **self._retrying_kwargs(settings, started))
        try:
            return await retrying(attempt)
        except Exception as exc:
            self._gave_up(exc, retrying.statistics.get("attempt_number", 1))
            raise

    def call(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """Run ``fn(*args, **kwargs)``, retrying as configured."""
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not self.should_retry(exc):
                raise
            first = exc
        return self.retry_after_failure(fn, args, kwargs, first, started)

    async def acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R:
        """Await ``fn(*args, **kwargs)``, retrying as configured."""
        started = time.monotonic()
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if not self.should_retry(exc):
                raise
            first = exc
        return await self.aretry_after_failure(fn, args, kwargs, first, started)


# ---------------------------------------------------------------- the decorator


def _decorate(policy: RetryPolicy, fn: Callable[P, R]) -> Callable[P, R]:
    if not policy.name:
        policy.name = getattr(fn, "__qualname__", repr(fn))
    should_retry = policy.should_retry
    if inspect.iscoroutinefunction(fn):
        afn = cast(Callable[..., Awaitable[Any]], fn)

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return await afn(*args, **kwargs)
            except Exception as exc:
                if not should_retry(exc):
                    raise
                first = exc
            return await policy.aretry_after_failure(afn, args, kwargs, first, started)

        return cast(Callable[P, R], async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # The success path: one call, one try block; tenacity only after a failure.
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not should_retry(exc):
                raise
            first = exc
        return policy.retry_after_failure(fn, args, kwargs, first, started)

    return wrapper


@overload
def retry_with_backoff(max_attempts: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def retry_with_backoff(
    max_attempts: int | None = None,
    *,
    on: RetryOn = None,
    initial_wait: float | None = None,
    max_wait: float | None = None,
    multiplier: float | None = None,
    jitter: float | None = None,
    timeout: float | None = None,
    max_retry_after: float | None = None,
    name: str = "",
    on_retry: Callable[[RetryEvent], Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def retry_with_backoff(
    max_attempts: Any = None,
    *,
    on: RetryOn = None,
    initial_wait: float | None = None,
    max_wait: float | None = None,
    multiplier: float | None = None,
    jitter: float | None = None,
    timeout: float | None = None,
    max_retry_after: float | None = None,
    name: str = "",
    on_retry: Callable[[RetryEvent], Any] | None = None,
) -> Any:
    """Retry a sync or async function when it fails with a transient error.

    ``max_attempts`` counts every attempt, the first included (default
    ``retry.max_attempts``, 3).  ``on`` picks what is retried (classes, category
    names such as ``"timeout"``, or a predicate); by default the transient
    categories.  Waits: ``initial_wait * multiplier**(n-1)`` plus a random jitter of
    up to ``jitter`` seconds (and at most the wait itself), capped at ``max_wait``;
    a ``Retry-After`` from the server replaces the computed wait (capped by
    ``max_retry_after``).  No wait starts that would end past ``timeout`` seconds
    after the first call.  After the last attempt the
    original exception propagates.

    >>> @retry_with_backoff(max_attempts=3)
    ... def fetch() -> str:
    ...     return "ok"
    >>> fetch()
    'ok'
    """
    if callable(max_attempts) and not isinstance(max_attempts, int):
        return _decorate(RetryPolicy(), max_attempts)  # used bare: @retry_with_backoff
    policy_args: dict[str, Any] = {
        "on": on,
        "initial_wait": initial_wait,
        "max_wait": max_wait,
        "multiplier": multiplier,
        "jitter": jitter,
        "timeout": timeout,
        "max_retry_after": max_retry_after,
        "name": name,
        "on_retry": on_retry,
    }
    RetryPolicy(max_attempts, **policy_args)  # validate now: bad arguments fail at decoration

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        return _decorate(RetryPolicy(max_attempts, **policy_args), fn)

    return decorator
