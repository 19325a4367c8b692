"""A rate limiter shared by name, by GCRA: ``RateLimiter("openai", "60/minute")``.

The algorithm is GCRA (the generic cell rate algorithm): it admits exactly what a
token bucket of the same rate and burst admits, but keeps one number per limiter,
the "theoretical arrival time", instead of a token count and a stamp.  That is why
it is used here: every limiter with the same name shares its state across threads
and every kernel on the machine (JSON in SQLite under ``core.state_dir``) or, with a
Redis URL configured, across machines, and one timestamp is one atomic update per
call.  (The authentication lockout, :mod:`sci_ext.core.security.lockout`, counts
failures per client in memory with a plain :class:`~sci_ext.core.security.lockout.TokenBucket`:
it needs "how full is this bucket" to prune idle clients, and no shared store.)
A caller that must wait
reserves its slot first, so waiting callers are served in order and never exceed
the rate together.  By default :meth:`RateLimiter.acquire` blocks (announcing the
wait) rather than erroring; ``block=False`` or ``timeout=`` raise
:class:`RateLimitExceeded` instead.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from ..errors import RateLimitExceeded
from .hooks import RateLimitEvent, on_rate_limit_wait
from .retry import async_sleep, sleep
from .store import Record, StateStore, resolve_store

__all__ = ["RateLimiter", "parse_rate", "rate_limiter"]

P = ParamSpec("P")
R = TypeVar("R")

_log = logging.getLogger("sci_ext.ratelimit")

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([A-Za-z]+)\s*$")


def parse_rate(text: str) -> tuple[float, float]:
    """``"60/minute"`` -> ``(60.0, 60.0)``: (calls, per seconds).

    >>> parse_rate("5/second")
    (5.0, 1.0)
    """
    match = _RATE.match(text)
    if match is None:
        raise ValueError(f"rate {text!r}: expected N/second, N/minute or N/hour (e.g. 60/minute)")
    count, unit = float(match.group(1)), match.group(2).lower()
    if unit not in _UNITS:
        raise ValueError(f"rate {text!r}: unknown unit {unit!r} (use second, minute or hour)")
    if count <= 0:
        raise ValueError(f"rate {text!r}: the number of calls must be > 0")
    return count, _UNITS[unit]


class RateLimiter:
    """A shared token bucket: at most ``calls`` per ``per`` seconds, ``burst`` at once.

    ``rate`` is ``"N/second|minute|hour"`` or a number of calls per ``per`` seconds.
    The default ``burst=1`` spaces calls evenly, which is what LLM APIs' per-minute
    limits reward; a larger burst lets that many calls through back to back.
    """

    def __init__(
        self, name: str, rate: str | float, per: float = 1.0, *, burst: int = 1, store: str | StateStore | None = None
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"rate limiter: name must be a non-empty string, got {name!r}")
        if isinstance(rate, str):
            calls, per = parse_rate(rate)
            self.rate_text = rate.strip()
        else:
            calls = float(rate)
            if not calls > 0 or not per > 0:
                raise ValueError(f"rate limiter {name!r}: rate and per must be > 0, got {rate!r}/{per!r}")
            self.rate_text = f"{calls:g}/{per:g}s"
        if not isinstance(burst, int) or burst < 1:
            raise ValueError(f"rate limiter {name!r}: burst must be an int >= 1, got {burst!r}")
        self.name = name
        self.interval = per / calls
        self.burst = burst
        from ..config import get_config

        cfg: Any = get_config()
        self.store: StateStore = resolve_store(store, "ratelimits", cfg.breaker.redis_url or cfg.cache.redis_url)

    def _reserve(self, block: bool, timeout: float | None) -> float:
        """Take a slot; return how long to wait for it (or raise without taking it)."""
        now = time.time()
        interval, slack = self.interval, (self.burst - 1) * self.interval
        waits: list[float] = []

        def take(current: Record | None) -> Record | None:
            tat = max(float(current["tat"]) if current else now, now)
            previous = float(current.get("interval", interval)) if current else interval
            if previous > 0 and previous != interval:
                # The rate changed (a typo fixed, a new plan): the calls still owed are
                # spaced at the new rate, not the old one (60/hour -> 60/second: no hour-long wait).
                tat = now + (tat - now) * interval / previous
            wait = max(0.0, tat - now - slack)
            waits[:] = [wait]
            if wait > 0 and (not block or (timeout is not None and wait > timeout)):
                return None
            return {"tat": tat + interval, "interval": interval}

        self.store.update(self.name, take)
        wait = waits[0]
        if wait > 0 and (not block or (timeout is not None and wait > timeout)):
            raise RateLimitExceeded(
                f"rate limit {self.name!r} ({self.rate_text}): next slot in {wait:.2f} s"
                + ("" if not block else f", longer than the timeout of {timeout} s")
            )
        return wait

    def _announce(self, wait: float, on_wait: Callable[[float], Any] | None) -> None:
        _log.info("rate limit %r (%s): waiting %.2f s", self.name, self.rate_text, wait)
        if on_wait is not None:
            on_wait(wait)
        on_rate_limit_wait.emit(RateLimitEvent(self.name, wait))

    def acquire(
        self, *, block: bool = True, timeout: float | None = None, on_wait: Callable[[float], Any] | None = None
    ) -> float:
        """Wait for a token and take it; returns the seconds waited.

        ``on_wait(seconds)`` is called before a wait (``%%guarded`` prints a line).
        ``block=False``, or a wait longer than ``timeout``, raises
        :class:`RateLimitExceeded` and takes nothing.
        """
        wait = self._reserve(block, timeout)
        if wait > 0:
            self._announce(wait, on_wait)
            sleep(wait)
        return wait

    async def aacquire(
        self, *, block: bool = True, timeout: float | None = None, on_wait: Callable[[float], Any] | None = None
    ) -> float:
        """The async twin of :meth:`acquire` (waits without blocking the event loop)."""
        wait = self._reserve(block, timeout)
        if wait > 0:
            self._announce(wait, on_wait)
            await async_sleep(wait)
        return wait

    def reset(self) -> None:
        """Refill the bucket (everywhere it is shared)."""
        self.store.delete(self.name)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a sync or async function: each call takes a token first."""
        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                await self.aacquire()
                return await afn(*args, **kwargs)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            self.acquire()
            return fn(*args, **kwargs)

        return wrapper

    def __repr__(self) -> str:
        return f"<RateLimiter {self.name!r} {self.rate_text} burst={self.burst} store={self.store.description}>"


def rate_limiter(name: str, rate: str, *, burst: int = 1, store: str | StateStore | None = None) -> RateLimiter:
    """Decorator factory: ``@rate_limiter("openai", "60/minute")``."""
    return RateLimiter(name, rate, burst=burst, store=store)
