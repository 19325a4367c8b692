"""``cache_result``: a layered result cache for functions, sync and async.

Layers, fastest first: an in-process LRU with a time to live, the diskcache
directory shared by every process on the machine (``cache.dir``), and Redis
(opt-in: ``backend="redis"``).  A hit in a slower layer fills the faster ones.
Disk and Redis are the :class:`~.layered.LayeredStore` that ``%%cached`` uses too.
The key is the function's qualified name, a hash of its code (and of the
notebook helpers it reads) and a content hash of its arguments (numpy-aware);
``key=`` replaces the argument part.  In one process only one call computes a
given key at a time; concurrent callers wait for its result.

>>> from sci_ext.core import cache_result
>>> @cache_result(ttl_seconds=60, backend="memory")
... def square(x):
...     return x * x
>>> square(4), square(4), square.cache_stats()["memory"]
(16, 16, {'hits': 1, 'misses': 1})
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, overload

from . import annotate, stats
from .keys import UnhashableInput, ValueHasher, hash_code

__all__ = ["CacheWarning", "LayerStats", "cache_result"]

F = TypeVar("F", bound=Callable[..., Any])
_MISSING = object()
BACKENDS = ("memory", "disk", "redis")


class CacheWarning(UserWarning):
    """A cache layer failed or a value could not be cached; the call still returned its result."""


class LayerStats:
    """Hits and misses of each layer of one cached function."""

    def __init__(self, layers: tuple[str, ...]) -> None:
        self._lock = threading.Lock()
        self.counts = {layer: {"hits": 0, "misses": 0} for layer in layers}

    def add(self, layer: str, result: str, name: str) -> None:
        """Count one lookup and report it to :mod:`.stats`."""
        with self._lock:
            self.counts[layer]["hits" if result == "hit" else "misses"] += 1
        stats.record(stats.CacheEvent("function", layer, result, name))

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy of the counts."""
        with self._lock:
            return {layer: dict(c) for layer, c in self.counts.items()}


class _MemoryLRU:
    """The in-process layer: least recently used first out, entries expire after ``ttl``."""

    def __init__(self, max_items: int, ttl: float | None) -> None:
        self.max_items = max_items
        self.ttl = ttl
        self._items: OrderedDict[str, tuple[float | None, Any]] = OrderedDict()
        self._notes: dict[str, dict[str, Any]] = {}  # annotations of entries that have some
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return _MISSING
            expires, value = item
            if expires is not None and expires <= time.monotonic():
                del self._items[key]
                return _MISSING
            self._items.move_to_end(key)
            return value

    def notes(self, key: str) -> dict[str, Any] | None:
        """The annotations stored with ``key`` (see :mod:`.annotations`), if any."""
        return self._notes.get(key)

    def put(self, key: str, value: Any, notes: dict[str, Any] | None = None) -> None:
        if self.max_items <= 0:
            return
        if notes:
            self._notes[key] = notes
        else:
            self._notes.pop(key, None)
        expires = time.monotonic() + self.ttl if self.ttl is not None else None
        with self._lock:
            self._items[key] = (expires, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._notes.pop(self._items.popitem(last=False)[0], None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._notes.clear()


class _Layers:
    """Everything one decorated function needs: key building, layers, single flight."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        ttl: float | None,
        backend: str,
        key: Callable[..., Any] | None,
        max_items: int | None,
        redis_url: str | None,
    ) -> None:
        from ..config import get_config

        if backend not in BACKENDS:
            raise ValueError(f"cache_result: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        cfg = get_config().cache
        self.func = func
        self.name = f"{func.__module__}.{func.__qualname__}"
        self.ttl = ttl
        self.backend = backend
        self.key_func = key
        self.redis_url = redis_url or cfg.redis_url
        if backend == "redis" and not self.redis_url:
            raise ValueError("cache_result: backend='redis' needs redis_url= or cache.redis_url")
        if backend == "redis" and not cfg.redis_signing_key:
            from ..errors import CacheError
            from .store import MISSING_KEY_MESSAGE

            raise CacheError(f"cache_result: {MISSING_KEY_MESSAGE}")
        self.layers = BACKENDS[: BACKENDS.index(backend) + 1]
        self.memory = _MemoryLRU(cfg.memory_max_items if max_items is None else max_items, ttl)
        self.stats = LayerStats(self.layers)
        self.signature = inspect.signature(func)
        self._flight_lock = threading.Lock()
        self._flights: dict[str, list[Any]] = {}
        self._async_flights: dict[tuple[int, str], asyncio.Future[Any]] = {}
        self._warned: set[str] = set()

    # -- keys ---------------------------------------------------------------
    def make_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        hasher = ValueHasher({self.func.__module__, "__main__"})
        hasher.tag(self.name)
        try:
            hasher.tag(hash_code(self.func))
            if self.key_func is not None:
                hasher.update(self.key_func(*args, **kwargs), "key")
            else:
                bound = self.signature.bind(*args, **kwargs)
                bound.apply_defaults()
                for param, value in bound.arguments.items():
                    hasher.tag(param)
                    hasher.update(value, f"argument {param!r} of {self.name}")
        except UnhashableInput as exc:
            self.warn(f"{self.name} not cached: {exc}; pass key= to say what identifies a call")
            return None
        return f"fn:{self.name}:{hasher.digest()}"

    def warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(message, CacheWarning, stacklevel=4)

    # -- slow layers ----------------------------------------------------------
    def _disk(self) -> Any:
        from ..config import get_config
        from .layered import get_disk_store

        cfg = get_config().cache
        return get_disk_store(cfg.dir, cfg.size_limit_bytes)

    def _redis(self) -> Any:
        from ..config import get_config
        from .layered import get_redis_store

        cfg = get_config().cache
        return get_redis_store(str(self.redis_url), cfg.redis_timeout_seconds, cfg.redis_signing_key)

    def _store(self) -> Any:
        """Disk, with Redis behind it for ``backend="redis"``: the :class:`LayeredStore` ``%%cached`` uses.

        Redis failing is the store's business (one warning, then the local layer alone
        for a while, then Redis again); an entry found only in Redis is copied to disk.
        """
        from .layered import LayeredStore

        remote = self._redis() if "redis" in self.layers else None
        return LayeredStore(self._disk(), remote, warn=self._redis_failed, source="function")

    def _redis_failed(self, message: str) -> None:
        self.warn(f"{self.name}: redis cache layer failed ({message}); skipping it")

    def lookup_slow(self, key: str) -> Any:
        """The value from disk or Redis (filling the faster layers), or ``_MISSING``."""
        from .serialize import unpack

        slow = self.layers[1:]
        if not slow:
            return _MISSING
        try:
            found = self._store().get(key)
            if found is None:
                for layer in slow:
                    self.stats.add(layer, "miss", self.name)
                return _MISSING
            buffer, layer = found
            value, meta = unpack(buffer)
        except Exception as exc:
            for layer in slow:
                self.stats.add(layer, "miss", self.name)
            self.warn(f"{self.name}: cache lookup failed ({type(exc).__name__}: {exc}); computing the result")
            return _MISSING
        if layer == "redis":
            self.stats.add("disk", "miss", self.name)
        self.stats.add(layer, "hit", self.name)
        notes = meta.get("annotations") if isinstance(meta, dict) else None
        self.memory.put(key, value, notes)
        annotate.hit("function", self.name, notes)
        return value

    def store_slow(self, key: str, value: Any, notes: dict[str, Any] | None = None) -> None:
        """Store ``value`` on disk and in Redis (failures warn once)."""
        if not self.layers[1:]:
            return
        from ..config import get_config
        from .serialize import pack
        from .store import EntryInfo

        now = time.time()
        info = EntryInfo(key, self.name, "function", 0, now, now + self.ttl if self.ttl is not None else None)
        try:
            packed = pack(
                value,
                meta={"info": {**info.__dict__, "hits": 0, "backend": ""}, **({"annotations": notes} if notes else {})},
                mmap_min_bytes=get_config().cache.mmap_min_bytes,
            )
        except Exception as exc:
            self.warn(
                f"{self.name}: result not stored beyond memory: cannot serialize it ({type(exc).__name__}: {exc})"
            )
            return
        info.size = packed.nbytes
        if _holds_secret(packed.stream):
            self.warn(f"{self.name}: result holds a secret value; kept in memory only, never written out")
            return
        try:
            self._store().set(key, packed, info, self.ttl)
        except Exception as exc:
            self.warn(f"{self.name}: disk cache layer failed ({type(exc).__name__}: {exc}); skipping it")

    # -- memory + single flight ----------------------------------------------
    def from_memory(self, key: str) -> Any:
        value = self.memory.get(key)
        self.stats.add("memory", "miss" if value is _MISSING else "hit", self.name)
        if value is not _MISSING:
            annotate.hit("function", self.name, self.memory.notes(key))
        return value

    def compute(self, key: str, value: Any, notes: dict[str, Any]) -> None:
        """Keep a freshly computed ``value`` (with its annotations) in every layer."""
        self.memory.put(key, value, notes)
        self.store_slow(key, value, notes=notes)

    def flight(self, key: str) -> threading.Lock:
        with self._flight_lock:
            entry = self._flights.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
            lock: threading.Lock = entry[0]
            return lock

    def land(self, key: str) -> None:
        with self._flight_lock:
            entry = self._flights.get(key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._flights[key]

    def clear(self) -> None:
        """Drop this function's entries from memory and disk."""
        self.memory.clear()
        if "disk" in self.layers:
            try:
                cache = self._disk().cache
                prefix = f"entry:fn:{self.name}:"
                for raw in list(cache.iterkeys()):
                    if isinstance(raw, str) and raw.startswith(prefix):
                        self._disk().delete(raw[len("entry:") :])
            except Exception as exc:
                self.warn(f"{self.name}: clearing the disk layer failed ({exc})")


def _holds_secret(stream: bytes) -> bool:
    """Does a pickle stream contain a secret value known to this process's redactor?"""
    try:
        from ..security.redact import get_redactor
    except ImportError:  # pragma: no cover - the security feature ships with sci_ext
        return False
    redactor = get_redactor()
    if not redactor:
        return False
    text = stream.decode("utf-8", "surrogateescape")
    return bool(redactor.redact(text) != text)


def _sync_wrapper(func: Callable[..., Any], layers: _Layers) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = layers.make_key(args, kwargs)
        if key is None:
            return func(*args, **kwargs)
        value = layers.from_memory(key)
        if value is not _MISSING:
            return value
        lock = layers.flight(key)
        try:
            with lock:
                # Another thread may have computed it while this one waited.
                value = layers.memory.get(key)
                if value is not _MISSING:
                    return value
                value = layers.lookup_slow(key)
                if value is not _MISSING:
                    return value
                handles = annotate.begin()
                try:
                    value = func(*args, **kwargs)
                finally:
                    notes = annotate.end(handles)
                layers.compute(key, value, notes)
                return value
        finally:
            layers.land(key)

    return wrapper


def _async_wrapper(func: Callable[..., Any], layers: _Layers) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = layers.make_key(args, kwargs)
        if key is None:
            return await func(*args, **kwargs)
        value = layers.from_memory(key)
        if value is not _MISSING:
            return value
        loop = asyncio.get_running_loop()
        flight_key = (id(loop), key)
        pending = layers._async_flights.get(flight_key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = loop.create_future()
        layers._async_flights[flight_key] = future
        try:
            value = layers.lookup_slow(key)
            if value is _MISSING:
                handles = annotate.begin()
                try:
                    value = await func(*args, **kwargs)
                finally:
                    notes = annotate.end(handles)
                layers.compute(key, value, notes)
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # waiters re-raise it; do not log "never retrieved"
            raise
        finally:
            layers._async_flights.pop(flight_key, None)

    return wrapper


@overload
def cache_result(ttl_seconds: F) -> F: ...


@overload
def cache_result(
    ttl_seconds: float | None = 300,
    *,
    backend: str = "disk",
    key: Callable[..., Any] | None = None,
    max_items: int | None = None,
    redis_url: str | None = None,
) -> Callable[[F], F]: ...


def cache_result(
    ttl_seconds: Any = 300,
    *,
    backend: str = "disk",
    key: Callable[..., Any] | None = None,
    max_items: int | None = None,
    redis_url: str | None = None,
) -> Any:
    """Cache a function's results in memory, on disk and (opt-in) in Redis.

    Args:
        ttl_seconds: how long a result stays valid in every layer (``None``: until evicted).
        backend: the slowest layer used: ``"memory"``, ``"disk"`` (default: memory, then
            diskcache in ``cache.dir``) or ``"redis"`` (memory, disk, then Redis).
        key: ``key(*args, **kwargs)`` returns what identifies a call, instead of all arguments.
        max_items: size of the memory layer (default ``cache.memory_max_items``).
        redis_url: Redis URL (default ``cache.redis_url``).

    The wrapped function gains ``cache_stats()`` (hits and misses per layer) and
    ``cache_clear()``.  Works on ``async def`` functions too.
    """
    if callable(ttl_seconds):  # used bare: @cache_result
        return cache_result()(ttl_seconds)

    def decorate(func: F) -> F:
        layers = _Layers(func, ttl=ttl_seconds, backend=backend, key=key, max_items=max_items, redis_url=redis_url)
        make = _async_wrapper if inspect.iscoroutinefunction(func) else _sync_wrapper
        wrapper: Any = make(func, layers)
        wrapper.cache_stats = layers.stats.snapshot
        wrapper.cache_clear = layers.clear
        wrapper.cache_layers = layers.layers
        return wrapper

    return decorate
