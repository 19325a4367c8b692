"""Sampling off the request path: one worker thread, one result shared by every request.

A tornado ``PeriodicCallback`` asks for a fresh sample every interval; the
blocking work (psutil, cgroup files, NVML, health checks, metrics compaction)
runs in a single-thread executor.  Requests read the latest sample, or await the
one in flight (single flight: 1000 concurrent requests cause one sample, not 1000).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["SingleFlight", "Worker"]

T = TypeVar("T")


class Worker:
    """A small thread pool for blocking work, so no handler blocks the event loop."""

    def __init__(self, threads: int = 2) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sci_ext-server")

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` in the pool and await it."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)

    def shutdown(self) -> None:
        """Stop the threads (pending work is cancelled)."""
        self.pool.shutdown(wait=False, cancel_futures=True)


class SingleFlight:
    """A value produced by blocking ``func``: cached for ``max_age`` seconds, one computation at a time."""

    def __init__(self, worker: Worker, func: Callable[[], T], max_age: float) -> None:
        self.worker = worker
        self.func = func
        self.max_age = max_age
        self.value: Any = None
        self.stamp = float("-inf")
        self._inflight: asyncio.Future[Any] | None = None

    def fresh(self) -> bool:
        """True when the cached value is younger than ``max_age``."""
        return time.monotonic() - self.stamp < self.max_age

    async def get(self, max_age: float | None = None) -> Any:
        """The cached value if fresh enough, else the result of one (shared) new computation."""
        limit = self.max_age if max_age is None else max_age
        if self.value is not None and time.monotonic() - self.stamp < limit:
            return self.value
        return await self.refresh()

    async def refresh(self) -> Any:
        """Compute anew (joining a computation already in flight)."""
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._compute())
        return await asyncio.shield(self._inflight)

    async def _compute(self) -> Any:
        try:
            value = await self.worker.run(self.func)
            self.value, self.stamp = value, time.monotonic()
            return value
        finally:
            self._inflight = None
