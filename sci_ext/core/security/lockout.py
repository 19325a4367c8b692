"""Token buckets, the lockout of clients that fail authentication too often, and a global budget.

The buckets are plain token buckets in this process's memory (the shared rate limiter
of :mod:`sci_ext.core.resilience.ratelimit` is GCRA, the same admission rule kept as one
timestamp for a shared store; here :meth:`TokenBucket.full` prunes idle clients).

Each client has a bucket of ``max_failures_per_minute`` tokens that refills at that
rate per minute.  A failed validation takes a token; a failure that finds the bucket
empty (more failures in a minute than allowed) locks the client out for
``lockout_seconds``: its requests are refused without even checking the token.

Client ids are normalised first (:func:`normalize_client`: surrounding spaces,
IPv4-mapped IPv6 addresses, IPv6 spelling), so ``' 1.2.3.4'`` and
``'::ffff:1.2.3.4'`` share ``1.2.3.4``'s bucket.  Rotating client ids still gets
one bucket each, so a *global* bucket (``global_failures_per_minute``, by default
ten clients' worth) counts every failure: over it, every validation is slowed down
by ``global_delay`` seconds and the budget hook fires (alert, audit) once a minute.
Idle buckets (refilled, not locked) are pruned at most once a minute and whenever
more than ``max_clients`` are kept.

All state sits behind one re-entrant lock held only for dictionary updates, so
callbacks and nested calls cannot deadlock.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import RateLimitExceeded
from .audit import escape_text

__all__ = ["Lockout", "TokenBucket", "lockout_slot", "normalize_client", "presented_key_id"]

Clock = Callable[[], float]


def normalize_client(client: Any) -> str:
    """One spelling per client: stripped, IPv4-mapped IPv6 as IPv4, IPv6 compressed lower-case.

    Other ids are kept (control characters escaped, at most 200 characters);
    an empty id is ``"unknown"``.
    """
    if isinstance(client, str) and len(client) <= 256:
        return _normalize_cached(client)
    return _normalize(client)


@functools.lru_cache(maxsize=4096)
def _normalize_cached(client: str) -> str:
    return _normalize(client)


def _normalize(client: Any) -> str:
    text = str(client).strip() if client is not None else ""
    if not text:
        return "unknown"
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return escape_text(text)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return address.compressed.lower()
    return str(address)


_KEY_ID = re.compile(r"sci_([0-9a-f]{12})_")


def presented_key_id(token: Any) -> str:
    """The key id a token names (``sci_<id>_...``), or ``"-"`` when it names none.

    Key ids are not secret (``apikey list``, the audit log); this only picks the
    lockout bucket, so one client's failures with one key never lock out another.
    """
    if isinstance(token, str):
        match = _KEY_ID.match(token)
        if match is not None:
            return match.group(1)
    return "-"


def lockout_slot(client: str, key_id: str) -> str:
    """The lockout's bucket name for a (normalised client, presented key id) pair."""
    return f"{client} (key {key_id})"


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

    def available(self, now: float) -> float:
        """Tokens there would be now (nothing taken)."""
        if not self.stamp:
            return self.tokens
        return min(self.capacity, self.tokens + (now - self.stamp) * self.rate)

    def full(self, now: float) -> bool:
        """True when the bucket has refilled completely (the client can be forgotten)."""
        return self.available(now) >= self.capacity


class Lockout:
    """Per-client failure buckets and lockouts, and a global failure budget."""

    def __init__(
        self,
        max_failures_per_minute: int = 10,
        lockout_seconds: float = 300.0,
        *,
        clock: Clock = time.monotonic,
        on_lockout: Callable[[str, float], None] | None = None,
        global_failures_per_minute: int | None = None,
        global_delay: float = 0.5,
        on_budget_exceeded: Callable[[int], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_clients: int = 10000,
    ) -> None:
        self.max_failures_per_minute = max_failures_per_minute
        self.lockout_seconds = lockout_seconds
        self.clock = clock
        self.on_lockout = on_lockout
        self.global_failures_per_minute = global_failures_per_minute or max(100, 10 * max_failures_per_minute)
        self.global_delay = global_delay
        self.on_budget_exceeded = on_budget_exceeded
        self.sleep = sleep
        self.max_clients = max_clients
        self._lock = threading.RLock()
        self._buckets: dict[str, TokenBucket] = {}
        self._locked_until: dict[str, float] = {}
        self._global = TokenBucket(self.global_failures_per_minute, self.global_failures_per_minute / 60.0)
        self._last_prune = 0.0
        self._last_alert: float | None = None
        self.lockouts = 0
        self.throttled = 0
        self.budget_alerts = 0

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

    def over_budget(self) -> bool:
        """True while failures from all clients together exceed the global budget."""
        with self._lock:
            return self._global.available(self.clock()) < 1.0

    def throttle(self) -> float:
        """Slow the caller down while over the global budget; the seconds waited."""
        if not self.over_budget():
            return 0.0
        with self._lock:
            self.throttled += 1
        self.sleep(self.global_delay)
        return self.global_delay

    def failure(self, client: str) -> bool:
        """Record a failed attempt; True if it locked ``client`` out now."""
        now = self.clock()
        alert = False
        with self._lock:
            if not self._global.take(now) and (self._last_alert is None or now - self._last_alert >= 60.0):
                self._last_alert, alert = now, True
                self.budget_alerts += 1
            if now - self._last_prune >= 60.0 or len(self._buckets) > self.max_clients:
                self._prune(now)
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = self._buckets[client] = TokenBucket(
                    self.max_failures_per_minute, self.max_failures_per_minute / 60.0
                )
            locked = not bucket.take(now)
            if locked:
                self._locked_until[client] = now + self.lockout_seconds
                self.lockouts += 1
        # callbacks outside the lock: they may call back into us
        if alert and self.on_budget_exceeded is not None:
            self.on_budget_exceeded(self.global_failures_per_minute)
        if locked and self.on_lockout is not None:
            self.on_lockout(client, self.lockout_seconds)
        return locked

    @property
    def clients(self) -> int:
        """How many client buckets are kept (bounded by pruning)."""
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        """Forget refilled buckets and ended lockouts; keep at most ``max_clients`` buckets."""
        self._last_prune = now
        self._locked_until = {c: t for c, t in self._locked_until.items() if t > now}
        self._buckets = {c: b for c, b in self._buckets.items() if c in self._locked_until or not b.full(now)}
        excess = len(self._buckets) - self.max_clients
        if excess > 0:  # a flood of fresh ids within a minute: drop the least recently seen (down to 90 %)
            excess += self.max_clients // 10
            idle = sorted((b.stamp, c) for c, b in self._buckets.items() if c not in self._locked_until)
            for _, name in idle[:excess]:
                del self._buckets[name]
