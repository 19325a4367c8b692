"""The stores a ``%%cached`` cell uses: a local one, plus Redis when configured.

Reads try the local store first, then Redis; an entry found only in Redis is
copied into the local disk cache so it is memory-mapped from then on.  Writes go
to both.  When Redis cannot be reached the cell still runs: one clear warning,
the local cache alone for a while, then Redis is tried again.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import stats
from .serialize import PackedEntry, read_header
from .store import BackendUnavailable, DiskStore, EntryInfo, MemoryStore, RedisStore

__all__ = ["REDIS_RETRY_SECONDS", "LayeredStore", "get_disk_store", "get_memory_store", "get_redis_store"]

#: After Redis failed, it is tried again after this many seconds.
REDIS_RETRY_SECONDS = 30.0

_lock = threading.Lock()
_disk: dict[str, DiskStore] = {}
_redis: dict[tuple[str, str | None], RedisStore] = {}
_memory: MemoryStore | None = None


def get_disk_store(directory: str, size_limit: int) -> DiskStore:
    """The (shared, reused) :class:`DiskStore` of ``directory``."""
    store = _disk.get(directory) if os.path.isabs(directory) else None  # no path resolution on a warm hit
    if store is not None and store.cache.size_limit == size_limit:
        return store
    path = str(Path(directory).expanduser().resolve())
    with _lock:
        store = _disk.get(path)
        if store is None:
            store = _disk[path] = DiskStore(path, size_limit)
        elif store.cache.size_limit != size_limit:
            store.cache.reset("size_limit", size_limit)
        _disk[directory] = store
        return store


def get_memory_store(max_items: int = 256) -> MemoryStore:
    """This process's :class:`MemoryStore`."""
    global _memory
    with _lock:
        if _memory is None:
            _memory = MemoryStore(max_items)
        _memory.max_items = max_items
        return _memory


def get_redis_store(url: str, timeout: float = 2.0, signing_key: str | None = None) -> RedisStore:
    """The (reused) :class:`RedisStore` of ``url`` (and signing key)."""
    with _lock:
        store = _redis.get((url, signing_key))
        if store is None:
            store = _redis[(url, signing_key)] = RedisStore(url, timeout, signing_key)
        return store


class LayeredStore:
    """A local store with an optional Redis behind it."""

    _down_until: dict[str, float] = {}

    def __init__(
        self,
        local: DiskStore | MemoryStore,
        remote: RedisStore | None = None,
        warn: Callable[[str], None] = print,
        source: str = "cell",
    ) -> None:
        self.local = local
        self.remote = remote
        self.warn = warn
        self.source = source

    @property
    def backend(self) -> str:
        """``memory``, ``disk`` or ``disk+redis``."""
        return self.local.backend + ("+redis" if self.remote is not None else "")

    def _remote_usable(self) -> RedisStore | None:
        if self.remote is None:
            return None
        if time.monotonic() < self._down_until.get(self.remote.url, 0.0):
            return None
        return self.remote

    def _remote_failed(self, exc: BackendUnavailable) -> None:
        if self.remote is None:
            return
        first = (
            self._down_until.get(self.remote.url, 0.0) == 0.0 or time.monotonic() >= self._down_until[self.remote.url]
        )
        self._down_until[self.remote.url] = time.monotonic() + REDIS_RETRY_SECONDS
        stats.record(stats.CacheEvent(self.source, "redis", "error"))
        if first:
            self.warn(
                f"sci_ext warning: {exc}; using the local cache only (retrying Redis in {REDIS_RETRY_SECONDS:.0f} s)"
            )

    def _remote_ok(self) -> None:
        if self.remote is not None:
            self._down_until[self.remote.url] = 0.0

    def get(self, key: str) -> tuple[Any, str] | None:
        """``(buffer, layer)`` of the entry, or ``None``."""
        buffer = self.local.get(key)
        if buffer is not None:
            return buffer, self.local.backend
        remote = self._remote_usable()
        if remote is None:
            return None
        try:
            raw = remote.get_raw(key)
        except BackendUnavailable as exc:
            self._remote_failed(exc)
            return None
        self._remote_ok()
        if raw is None:
            return None
        if isinstance(self.local, DiskStore):
            try:
                recorded = read_header(raw).get("meta", {}).get("info")
                info = EntryInfo(**recorded) if recorded else EntryInfo(key, "", self.source, len(raw), time.time())
                self.local.cache.set(f"entry:{key}", io.BytesIO(raw), read=True, expire=_ttl_left(info))
                self.local.cache.set(f"meta:{key}", info.to_json(), expire=_ttl_left(info))
                local = self.local.get(key)
                if local is not None:
                    return local, "redis"
            except Exception:  # noqa: S110  # nosec B110  # a bad remote entry is judged by the caller's unpack
                pass
        return bytearray(raw), "redis"

    def set(self, key: str, packed: PackedEntry, info: EntryInfo, ttl: float | None) -> None:
        """Store locally, then in Redis (a Redis failure only warns)."""
        self.local.set(key, packed, info, ttl)
        remote = self._remote_usable()
        if remote is None:
            return
        try:
            remote.set(key, packed, info, ttl)
            self._remote_ok()
        except BackendUnavailable as exc:
            self._remote_failed(exc)

    def count_hit(self, key: str) -> None:
        """Count a hit in the local store (and in Redis when reachable)."""
        self.local.count_hit(key)
        remote = self._remote_usable()
        if remote is not None:
            try:
                remote.count_hit(key)
            except BackendUnavailable as exc:
                self._remote_failed(exc)

    def delete(self, key: str) -> bool:
        """Remove the entry everywhere."""
        found = self.local.delete(key)
        remote = self._remote_usable()
        if remote is not None:
            try:
                found = remote.delete(key) or found
            except BackendUnavailable as exc:
                self._remote_failed(exc)
        return found

    def count(self, result: str) -> None:
        """Count a cell ``hits``/``misses`` in the local store (best effort: never fails the cell)."""
        try:
            self.local.count(result)
        except Exception:  # noqa: S110  # nosec B110  # counters are best effort
            pass

    def get_note(self, name: str) -> str | None:
        """A note of the local store (notes are per machine: they explain, they never serve)."""
        return self.local.get_note(name)

    def set_note(self, name: str, text: str) -> None:
        """Keep a note in the local store."""
        self.local.set_note(name, text)

    def lock(self, key: str) -> Any | None:
        """The local store's lock for computing ``key`` (None for the memory store)."""
        return self.local.lock(key)


def _ttl_left(info: EntryInfo) -> float | None:
    if info.expires is None:
        return None
    return max(1.0, info.expires - time.time())
