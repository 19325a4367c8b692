"""Every HTTP attempt of an SDK call, and the bounds that stop runaway retry loops under the caller's own.

The SDKs retry inside one call (``max_retries``, 2 by default) and callers retry
around it (``@backoff.on_exception(backoff.expo, openai.RateLimitError)`` with no
limit, loops that retry even a 400).  :mod:`.patch` puts each call in
:data:`CURRENT` while the SDK works on it; this module is told about each attempt:

* :func:`before_attempt`, from the SDK's ``_build_request`` (once per attempt, outside
  the SDK's ``try`` around sending, so an error raised there reaches the caller as it
  is): refuses the attempt when a bound is reached or a named breaker is open;
* :func:`after_attempt`, from the HTTP client's ``send``: counts the attempt and its
  outcome (429, 5xx, timeout) and feeds the breakers;
* :func:`cap_sleep`, from the SDK's retry delay: an SDK never sleeps past the deadline.

A *streak* is the failed attempts in a row at one provider and model, in one cell (one
run, in a script), whatever call or loop made them: ``llm.max_attempts`` bounds its
attempts and ``llm.max_retry_seconds`` the time since its first failure; a success ends
it.  ``llm.max_failed_attempts`` bounds the failed attempts of the whole cell or run,
for loops that catch every error and start again.  A refusal raises
:class:`RetryBoundReached`, a :class:`~sci_ext.core.errors.SciExtError` and not an SDK
error, so ``backoff``/``tenacity`` decorators typed on the SDK's errors let it through.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from typing import Any

from .. import context
from ..errors import SciExtError
from .hints import how_to_set

__all__ = [
    "CURRENT",
    "RetryBoundReached",
    "after_attempt",
    "before_attempt",
    "cap_sleep",
    "failed_now",
    "reset",
]

#: The call the SDK is working on in this thread or task (set by :mod:`.patch` around ``request``).
CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("sci_ext_llm_call", default=None)

_log = logging.getLogger("sci_ext.llm")
_PROCESS = "<run>"  # the scope of calls outside any cell: the script's run


class RetryBoundReached(SciExtError):
    """An SDK attempt was refused: a retry bound of sci_ext is reached (``bound`` names the setting).

    Not an SDK error type, so retry decorators typed on ``openai.RateLimitError`` or
    ``anthropic.APIStatusError`` do not catch it and the caller's loop ends.
    """

    def __init__(self, message: str, *, bound: str, limit: float, attempts: int, seconds: float) -> None:
        super().__init__(message)
        self.bound = bound
        self.limit = limit
        self.attempts = attempts
        self.seconds = seconds


class _Streak:
    __slots__ = ("attempts", "first", "rate_limited", "server_errors")

    def __init__(self, now: float) -> None:
        self.first = now
        self.attempts = 0
        self.rate_limited = 0
        self.server_errors = 0


_lock = threading.Lock()
_streaks: dict[tuple[str, str, str], _Streak] = {}
_failed: dict[str, int] = {}  # scope -> failed attempts in it
_MAX_SCOPES = 10_000  # a kernel runs many cells: forget old ones past this many


def _scope(call: Any) -> str:
    run = getattr(call, "run", None) or context.current()
    return run.correlation_id or _PROCESS


def _key(call: Any) -> tuple[str, str, str]:
    return (_scope(call), call.provider, call.model)


def reset() -> None:
    """Forget every streak and count (tests; ``%sci_llm --reset``)."""
    with _lock:
        _streaks.clear()
        _failed.clear()


def _breaker_names(settings: Any, provider: str) -> list[str]:
    names = []
    for entry in settings.breakers:
        who, sep, name = entry.partition("=")
        if not sep:
            names.append(who)
        elif who == provider:
            names.append(name)
    return names


def _refuse(call: Any, bound: str, limit: float, what: str, example: str) -> RetryBoundReached:
    streak = _streaks.get(_key(call))
    seconds = time.monotonic() - streak.first if streak is not None else 0.0
    attempts = streak.attempts if streak is not None else 0
    where = "this cell" if _scope(call) != _PROCESS else "this run"
    limited, errors = (streak.rate_limited, streak.server_errors) if streak is not None else (0, 0)
    call.refused = bound
    error = RetryBoundReached(
        f"sci_ext stopped retrying this {call.provider} call ({call.model}): {what} ({bound} = {limit:g}); "
        f"{attempts} failed attempt{'s' if attempts != 1 else ''} in {seconds:.1f} s in {where}"
        f" ({limited} rate-limited, {errors} server errors)."
        f" No further attempt was sent. Raise the bound with {how_to_set(bound, example)}",
        bound=bound,
        limit=limit,
        attempts=attempts,
        seconds=seconds,
    )
    with _lock:  # the next call starts a new streak (llm.max_failed_attempts still bounds the run)
        _streaks.pop(_key(call), None)
    return error


def reached(call: Any, settings: Any) -> RetryBoundReached | None:
    """The error to raise if a bound on the call's streak or scope is reached now, else None."""
    streak = _streaks.get(_key(call))
    if streak is not None:
        if settings.max_attempts is not None and streak.attempts >= settings.max_attempts:
            return _refuse(
                call, "llm.max_attempts", settings.max_attempts, "too many failed attempts in a row",
                str(settings.max_attempts * 2),
            )  # fmt: skip
        if settings.max_retry_seconds is not None and time.monotonic() - streak.first >= settings.max_retry_seconds:
            return _refuse(
                call, "llm.max_retry_seconds", settings.max_retry_seconds, "retried for too long",
                f"{settings.max_retry_seconds * 2:g}",
            )  # fmt: skip
    if settings.max_failed_attempts is not None and _failed.get(_scope(call), 0) >= settings.max_failed_attempts:
        return _refuse(
            call, "llm.max_failed_attempts", settings.max_failed_attempts,
            "too many failed attempts in " + ("this cell" if _scope(call) != _PROCESS else "this run"),
            str(settings.max_failed_attempts * 2),
        )  # fmt: skip
    return None


def before_attempt(call: Any, settings: Any) -> None:
    """Refuse the next attempt of ``call`` if a bound is reached or a named breaker is open (raises)."""
    error = reached(call, settings)
    if error is not None:
        raise error
    if settings.breakers:
        from ..resilience.breaker import circuit_breaker, get_breaker

        for name in _breaker_names(settings, call.provider):
            breaker = get_breaker(name) or circuit_breaker(name)
            try:
                token = breaker.before_call()
            except SciExtError:
                call.refused = "breaker"
                raise
            call.breaker_tokens.append((breaker, token))


def _classify(status: int | None, exc: BaseException | None) -> str:
    if exc is not None:
        name = type(exc).__name__
        if "Timeout" in name:
            return "timeout"
        return "connection_error"
    if status is None or status < 400:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "client_error"


def after_attempt(call: Any, status: int | None, exc: BaseException | None) -> None:
    """Count one attempt of ``call`` that got ``status`` (or raised ``exc`` before any)."""
    outcome = _classify(status, exc)
    call.attempts += 1
    call.outcomes[outcome] = call.outcomes.get(outcome, 0) + 1
    key = _key(call)
    with _lock:
        if outcome == "ok":
            _streaks.pop(key, None)
        else:
            streak = _streaks.get(key)
            if streak is None:
                if len(_streaks) > _MAX_SCOPES:
                    _streaks.clear()
                streak = _streaks[key] = _Streak(time.monotonic())
            streak.attempts += 1
            if outcome == "rate_limited":
                streak.rate_limited += 1
            elif outcome != "client_error":
                streak.server_errors += 1
            scope = key[0]
            if len(_failed) > _MAX_SCOPES:
                _failed.clear()
            _failed[scope] = _failed.get(scope, 0) + 1
    tokens, call.breaker_tokens = call.breaker_tokens, []
    for breaker, token in tokens:
        try:
            if outcome == "ok":
                breaker.on_success(token)
            elif outcome == "client_error":
                breaker.on_abort(token)  # a bad request says nothing about the service
            else:
                breaker.on_failure(token)
        except Exception:  # a breaker store that fails must not fail the call
            _log.exception("sci_ext: updating breaker %s after an LLM attempt failed", breaker.name)


def failed_now(call: Any, settings: Any) -> RetryBoundReached | None:
    """After the SDK gave up on a failed attempt: the bound error if that attempt reached a bound."""
    if call.attempts == 0 or call.outcomes.get("ok"):
        return None
    return reached(call, settings)


def cap_sleep(seconds: float, settings: Any) -> float:
    """An SDK's retry delay, cut so its next attempt is not later than the streak's deadline."""
    call = CURRENT.get()
    if call is None:
        return seconds
    streak = _streaks.get(_key(call))
    if streak is None:
        return seconds
    if settings.max_attempts is not None and streak.attempts >= settings.max_attempts:
        return 0.0  # the next attempt is refused: no point waiting for it
    if settings.max_retry_seconds is not None:
        left = streak.first + settings.max_retry_seconds - time.monotonic()
        return max(0.0, min(seconds, left))
    return seconds
