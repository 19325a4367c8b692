"""Token buckets and the lockout of clients that fail authentication too often.

Each client has a bucket of ``max_failures_per_minute`` tokens that refills at that
rate per minute.  A failed validation takes a token; a failure that finds the bucket
empty (more failures in a minute than allowed) locks the client out for
``lockout_seconds``: its requests are refused without even checking the token.
All state sits behind one re-entrant lock held only for dictionary updates, so
callbacks and nested calls cannot deadlock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RateLimitExceeded

__all__ = ["Lockout", "TokenBucket"]

Clock = Callable[[], float]


@dataclass
class TokenBucket:
    """``capacity`` tokens refilled at ``rate`` tokens per second."""

    capacity: float
    rate: float
    tokens: float = -1.0
    stamp: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def take(self, now: float, amount: float = 1.0) -> bool:
        """Take ``amount`` tokens if there are enough; refills first."""
        if self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False

    def full(self, now: float) -> bool:
        """True when the bucket has refilled completely (the client can be forgotten)."""
        return self.tokens + (now - self.stamp) * self.rate >= self.capacity


class Lockout:
    """Per-client failure buckets and lockouts."""

    def __init__(
        self,
        max_failures_per_minute: int = 10,
        lockout_seconds: float = 300.0,
        *,
        clock: Clock = time.monotonic,
        on_lockout: Callable[[str, float], None] | None = None,
    ) -> None:
        self.max_failures_per_minute = max_failures_per_minute
        self.lockout_seconds = lockout_seconds
        self.clock = clock
        self.on_lockout = on_lockout
        self._lock = threading.RLock()
        self._buckets: dict[str, TokenBucket] = {}
        self._locked_until: dict[str, float] = {}
        self.lockouts = 0

    def check(self, client: str) -> None:
        """Raise :class:`RateLimitExceeded` while ``client`` is locked out."""
        until = self._locked_until.get(client)
        if until is None:
            return
        now = self.clock()
        if now < until:
            raise RateLimitExceeded(
                f"client {client} is locked out for {until - now:.0f} more second(s) "
                "after repeated authentication failures"
            )
        with self._lock:
            if self._locked_until.get(client) == until:
                del self._locked_until[client]
                self._buckets.pop(client, None)

    def is_locked(self, client: str) -> bool:
        """True while ``client`` is locked out."""
        try:
            self.check(client)
        except RateLimitExceeded:
            return True
        return False

    def failure(self, client: str) -> bool:
        """Record a failed attempt; True if it locked ``client`` out now."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = self._buckets[client] = TokenBucket(
                    self.max_failures_per_minute, self.max_failures_per_minute / 60.0
                )
            if bucket.take(now):
                return False
            self._locked_until[client] = now + self.lockout_seconds
            self.lockouts += 1
            self._prune(now)
        if self.on_lockout is not None:  # outside the lock: the callback may call back into us
            self.on_lockout(client, self.lockout_seconds)
        return True

    def _prune(self, now: float) -> None:
        # Keep memory bounded under a flood of distinct clients.
        if len(self._buckets) > 10000:
            for name in [c for c, b in self._buckets.items() if b.full(now) and c not in self._locked_until]:
                del self._buckets[name]
