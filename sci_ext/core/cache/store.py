"""Where entries live: a private diskcache directory, this process's memory, or Redis.

Every store keeps serialized entries (:mod:`.serialize`) under a key plus a small
JSON record of metadata (name, size, created, expiry) for listings, and counts
hits.  ``get`` returns a writable buffer over the entry (a copy-on-write memory
map for disk entries) or ``None``; it never returns a half-written entry because
diskcache inserts its row only after the value file is complete.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import CacheError
from .serialize import PackedEntry, open_buffer

__all__ = [
    "BackendUnavailable",
    "DiskStore",
    "EntryInfo",
    "EntryStore",
    "MemoryStore",
    "RedisStore",
    "UnsignedEntry",
    "ensure_private_dir",
    "redact_url",
]


class BackendUnavailable(CacheError):
    """A backend (Redis) cannot be reached; callers fall back to the local cache."""


class UnsignedEntry(CacheError):
    """A Redis entry lacks a valid signature under ``cache.redis_signing_key``: never unpickled."""


@dataclass
class EntryInfo:
    """What a listing shows about one entry."""

    key: str
    name: str
    kind: str
    size: int
    created: float
    expires: float | None = None
    hits: int = 0
    backend: str = "disk"

    def to_json(self) -> str:
        """This record as JSON (hits and backend are kept elsewhere)."""
        data = asdict(self)
        data.pop("hits")
        data.pop("backend")
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | bytes, backend: str) -> EntryInfo:
        """Parse a record written by :meth:`to_json`."""
        return cls(**json.loads(text), backend=backend)


class EntryStore(Protocol):
    """The operations every backend offers."""

    backend: str

    def get(self, key: str) -> Any | None:
        """A writable buffer over the entry, or ``None`` on a miss."""

    def set(self, key: str, packed: PackedEntry, info: EntryInfo, ttl: float | None) -> None:
        """Store an entry (replacing any entry with the same key)."""

    def delete(self, key: str) -> bool:
        """Remove an entry; ``True`` if there was one."""

    def entries(self) -> list[EntryInfo]:
        """Every entry's metadata."""

    def count_hit(self, key: str) -> None:
        """Record a hit of ``key`` (and count it in the store-wide ``hits``)."""

    def count(self, result: str) -> None:
        """Add one to the store-wide ``hits`` or ``misses`` counter of cached cells."""

    def counters(self) -> dict[str, int]:
        """Store-wide hits and misses of cached cells since the last clear."""

    def volume(self) -> int:
        """Bytes the entries use."""

    def clear(self) -> int:
        """Remove every entry and counter; returns how many entries there were."""

    def get_note(self, name: str) -> str | None:
        """A small text note kept beside the entries (why a cell ran), or None."""

    def set_note(self, name: str, text: str) -> None:
        """Keep a small text note (replacing the previous one of that name)."""

    def lock(self, key: str) -> Any | None:
        """A lock (``filelock``-like: ``acquire(timeout=, poll_interval=)``, ``release``, ``is_locked``)
        that kernels sharing this store take while computing ``key``; None when only one process uses it."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700, or tighten it; refuse a directory another user can write.

    diskcache unpickles what is in its directory (CVE-2025-69872), so nobody else
    may be able to write there.  The rule is :func:`sci_ext.core.trust.ensure_private_dir`'s;
    a refusal is a :class:`CacheError` (one line: path, owner, mode, fix).
    """
    from ..trust import UntrustedPathError
    from ..trust import ensure_private_dir as _ensure

    try:
        return _ensure(path, what="cache directory")
    except UntrustedPathError as exc:
        raise CacheError(str(exc)) from None


#: Format of a Redis entry's signature record: version byte, expiry, HMAC.
SIGNATURE_VERSION = 2
#: Seconds an entry's signed expiry may be behind this machine's clock (clock skew between machines).
EXPIRY_GRACE_SECONDS = 30
MISSING_KEY_MESSAGE = (
    "cache.redis_url is set but cache.redis_signing_key is not: the Redis cache refuses to start "
    "(its entries are pickles any Redis client could forge). Fix: set the same key on every machine, "
    "e.g. `%sci_secret set SCI_EXT_CACHE__REDIS_SIGNING_KEY`, `%sci_secret export SCI_EXT_CACHE__REDIS_SIGNING_KEY` "
    "and `%sci_config --reload`, or export SCI_EXT_CACHE__REDIS_SIGNING_KEY before starting Jupyter"
)


class DiskStore:
    """Entries in a diskcache directory shared by every kernel on the machine."""

    backend = "disk"

    def __init__(self, directory: str | Path, size_limit: int = 4 * 2**30) -> None:
        import diskcache

        from .private_disk import PrivateDisk

        self.directory = ensure_private_dir(Path(directory).expanduser())
        from ..trust import open_private

        # The database 0600 whatever the umask, created without following a symlink (SQLite keeps its mode).
        os.close(open_private(self.directory / "cache.db", os.O_RDWR, what="cache database"))
        self.cache = diskcache.Cache(
            str(self.directory),
            size_limit=size_limit,
            eviction_policy="least-recently-used",
            # Entries are streamed to files; diskcache only ever stores bytes, str and ints here.
            disk_min_file_size=1 << 15,
            disk=PrivateDisk,  # value files and their sub-directories private whatever the umask
        )
        self._counts = _DeferredWrites(self._write_later)

    def _write_later(self, counts: dict[str, int], touched: dict[int, float]) -> None:
        with self.cache.transact():
            for name, n in counts.items():
                self.cache.incr(name, n, default=0)
            if touched:
                # What diskcache's get does for its least-recently-used eviction, done here off the hit path.
                for rowid, when in touched.items():
                    self.cache._sql("UPDATE Cache SET access_time = ? WHERE rowid = ?", (when, rowid))

    def _read(self, name: str) -> Any | None:
        """diskcache's ``get(name, read=True)`` without its write transaction (see :meth:`get`).

        It is the query of diskcache's own no-transaction path (``Cache.get`` with an eviction
        policy that needs no update), through the same internals (``_sql``, ``_disk``).
        """
        cache = self.cache
        if cache.statistics or not hasattr(cache, "_sql") or not hasattr(cache, "_disk"):
            return cache.get(name, default=None, read=True)  # another diskcache than the one this follows
        db_key, raw = cache._disk.put(name)
        rows = cache._sql(
            "SELECT rowid, mode, filename, value FROM Cache WHERE key = ? AND raw = ?"
            " AND (expire_time IS NULL OR expire_time > ?)",
            (db_key, raw, time.time()),
        ).fetchall()
        if not rows:
            return None
        ((rowid, mode, filename, value),) = rows
        try:
            handle = cache._disk.fetch(mode, filename, value, True)
        except OSError:
            return None  # deleted between the query and the read (as diskcache's get)
        self._counts.note_hit(rowid)
        return handle

    def flush_counts(self) -> None:
        """Write the hit counts not yet written (they are written shortly after each hit anyway)."""
        self._counts.flush()

    def get(self, key: str) -> Any | None:
        # diskcache's get updates the row's access time (least-recently-used eviction) in a write
        # transaction: most of a warm hit's time.  The row is read without one, as diskcache's own
        # fast path does, and its access time written moments later with the hit counts.
        handle = self._read(f"entry:{key}")
        if handle is None:
            return None
        try:
            return open_buffer(handle)
        finally:
            handle.close()

    def set(self, key: str, packed: PackedEntry, info: EntryInfo, ttl: float | None) -> None:
        self._counts.flush()  # the old entry's hits, before its count is reset
        self.cache.set(f"entry:{key}", packed.reader(), read=True, expire=ttl)
        self.cache.set(f"meta:{key}", info.to_json(), expire=ttl)
        self.cache.delete(f"hits:{key}")

    def delete(self, key: str) -> bool:
        self._counts.flush()
        found = bool(self.cache.delete(f"entry:{key}"))
        self.cache.delete(f"meta:{key}")
        self.cache.delete(f"hits:{key}")
        return found

    def entries(self) -> list[EntryInfo]:
        self._counts.flush()
        out = []
        for raw in list(self.cache.iterkeys()):
            if not isinstance(raw, str) or not raw.startswith("meta:"):
                continue
            key = raw[5:]
            text = self.cache.get(raw)
            if text is None or f"entry:{key}" not in self.cache:
                continue
            try:
                info = EntryInfo.from_json(text, self.backend)
            except (ValueError, TypeError):
                continue
            info.hits = int(self.cache.get(f"hits:{key}", 0))
            out.append(info)
        return out

    def count_hit(self, key: str) -> None:
        # Written by a background thread moments later, in one transaction with the hits that came
        # meanwhile: a database transaction was a third of a warm hit's time.
        self._counts.add(f"hits:{key}", "stat:hits")

    def count(self, result: str) -> None:
        """Add one to the machine-wide ``hits`` or ``misses`` counter."""
        self._counts.flush()
        self.cache.incr(f"stat:{result}", default=0)

    def counters(self) -> dict[str, int]:
        """Machine-wide hits and misses of cached cells since the last clear."""
        self._counts.flush()
        return {name: int(self.cache.get(f"stat:{name}", 0)) for name in ("hits", "misses")}

    def volume(self) -> int:
        """Bytes used on disk."""
        return int(self.cache.volume())

    def clear(self) -> int:
        """Remove every entry and counter, and files left by writers that were killed.

        Returns how many entries there were.
        """
        import warnings

        with self._counts.writing:  # no batch of counts lands in the cleared cache
            self._counts.discard()
            count = sum(1 for raw in self.cache.iterkeys() if isinstance(raw, str) and raw.startswith("entry:"))
            self.cache.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # check() warns about every orphan it removes
            self.cache.check(fix=True)
        return count

    def get_note(self, name: str) -> str | None:
        """A note kept in the cache database (not an entry: never listed, never unpickled)."""
        text = self.cache.get(f"note:{name}")
        return text if isinstance(text, str) else None

    def set_note(self, name: str, text: str) -> None:
        """Keep a note in the cache database."""
        self.cache.set(f"note:{name}", text)

    def lock(self, key: str) -> Any | None:
        """A file lock in the cache directory: kernels on this machine compute a key once."""
        from filelock import FileLock

        from ..trust import ensure_private_dir as _ensure

        locks = _ensure(self.directory / ".locks", what="cache lock directory")
        return FileLock(str(locks / f"{key}.lock"), mode=0o600)

    def close(self) -> None:
        """Write pending counts and close the database connection."""
        self._counts.flush()
        self.cache.close()


class _DeferredWrites:
    """Hit counts and access times written off the hit path: by one daemon thread, batched, at exit.

    A hit adds to an in-memory tally and wakes the writer, which waits ``DELAY`` (so a burst
    of hits is one transaction) and writes.  Readers in this process (``entries``,
    ``counters``) flush first; another process sees the counts within moments.  Counts are
    best effort: a kernel killed in those moments loses them.
    """

    DELAY = 0.02

    def __init__(self, write: Callable[[dict[str, int], dict[int, float]], None]) -> None:
        self._write = write
        self._pending: dict[str, int] = {}
        self._touched: dict[int, float] = {}
        self._lock = threading.Lock()
        #: Held while a batch is written, and by the store's ``clear`` (no batch lands in a cleared cache).
        self.writing = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, *names: str) -> None:
        """Count one more of each name (``hits:KEY``, ``stat:hits``)."""
        with self._lock:
            for name in names:
                self._pending[name] = self._pending.get(name, 0) + 1
            self._start()
        self._wake.set()

    def note_hit(self, rowid: int) -> None:
        """Record that a row was read now (its access time, for least-recently-used eviction)."""
        with self._lock:
            self._touched[rowid] = time.time()
            self._start()
        self._wake.set()

    def _start(self) -> None:
        if self._thread is None:
            import atexit

            self._thread = threading.Thread(target=self._run, name="sci_ext-cache-writes", daemon=True)
            self._thread.start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.DELAY)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write what is pending now."""
        with self.writing:
            with self._lock:
                pending, self._pending = self._pending, {}
                touched, self._touched = self._touched, {}
            if pending or touched:
                try:
                    self._write(pending, touched)
                except Exception:  # noqa: S110  # nosec B110  # best effort (a cleared or closed cache)
                    pass

    def discard(self) -> None:
        """Forget what is pending (the cache is being cleared; hold :attr:`writing` around both)."""
        with self._lock:
            self._pending, self._touched = {}, {}


class MemoryStore:
    """Entries in this process only (``--backend memory``); least recently used go first."""

    backend = "memory"

    def __init__(self, max_items: int = 256) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[bytes, EntryInfo]] = OrderedDict()
        self._lock = threading.Lock()
        self._counters = {"hits": 0, "misses": 0}
        self._notes: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            blob, info = item
            if info.expires is not None and info.expires <= time.time():
                del self._items[key]
                return None
            self._items.move_to_end(key)
        return bytearray(blob)

    def set(self, key: str, packed: PackedEntry, info: EntryInfo, ttl: float | None) -> None:
        info.expires = time.time() + ttl if ttl is not None else None
        info.backend = self.backend
        blob = packed.to_bytes()
        with self._lock:
            self._items[key] = (blob, info)
            self._items.move_to_end(key)
            while len(self._items) > max(self.max_items, 1):
                self._items.popitem(last=False)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._items.pop(key, None) is not None

    def entries(self) -> list[EntryInfo]:
        now = time.time()
        with self._lock:
            return [info for _, info in self._items.values() if info.expires is None or info.expires > now]

    def count_hit(self, key: str) -> None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                item[1].hits += 1
            self._counters["hits"] += 1

    def count(self, result: str) -> None:
        """Add one to this process's ``hits`` or ``misses`` counter."""
        with self._lock:
            self._counters[result] = self._counters.get(result, 0) + 1

    def counters(self) -> dict[str, int]:
        """Hits and misses of cached cells in this process since the last clear."""
        with self._lock:
            return dict(self._counters)

    def volume(self) -> int:
        """Bytes the entries use."""
        with self._lock:
            return sum(len(blob) for blob, _ in self._items.values())

    def clear(self) -> int:
        """Remove every entry and counter."""
        with self._lock:
            count = len(self._items)
            self._items.clear()
            self._notes.clear()
            self._counters = {"hits": 0, "misses": 0}
        return count

    def get_note(self, name: str) -> str | None:
        """A note of this process."""
        with self._lock:
            return self._notes.get(name)

    def set_note(self, name: str, text: str) -> None:
        """Keep a note in this process (the oldest go past 4 x max_items)."""
        with self._lock:
            self._notes[name] = text
            self._notes.move_to_end(name)
            while len(self._notes) > 4 * max(self.max_items, 1):
                self._notes.popitem(last=False)

    def lock(self, key: str) -> None:
        """No lock: the memory store lives in one process."""
        return None


def redact_url(url: str) -> str:
    """``url`` without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisStore:
    """Entries in Redis, shared across machines.  Connection failures raise :class:`BackendUnavailable`."""

    backend = "redis"
    prefix = "sci_ext:cache:"

    def __init__(self, url: str, timeout: float = 2.0, signing_key: str | None = None) -> None:
        # Entries are pickles: only writers holding the shared key can make a kernel unpickle.
        if not signing_key:
            raise CacheError(MISSING_KEY_MESSAGE)
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._key = signing_key.encode()

    def _mac(self, key: str, expiry: int, blob: bytes) -> bytes:
        """HMAC-SHA256 over the format version, the entry key, its expiry and the bytes."""
        import hashlib
        import hmac

        mac = hmac.new(self._key, b"sci_ext-cache\0%d\0" % SIGNATURE_VERSION, hashlib.sha256)
        key_bytes = key.encode("utf-8")
        mac.update(len(key_bytes).to_bytes(4, "big") + key_bytes + expiry.to_bytes(8, "big"))
        mac.update(blob)
        return mac.digest()

    def _signature(self, key: str, expiry: int, blob: bytes) -> bytes:
        """The stored signature record: version (1 byte), expiry (8 bytes, 0 = none), HMAC (32 bytes)."""
        return bytes([SIGNATURE_VERSION]) + expiry.to_bytes(8, "big") + self._mac(key, expiry, blob)

    def _checked(self, key: str, blob: bytes | None, signature: bytes | None) -> bytes | None:
        if blob is None:
            return None
        import hmac

        if signature is None or len(signature) != 41 or signature[0] != SIGNATURE_VERSION:
            raise UnsignedEntry(
                "Redis entry is not signed with cache.redis_signing_key (format "
                f"{SIGNATURE_VERSION}); ignored, never unpickled"
            )
        expiry = int.from_bytes(signature[1:9], "big")
        if not hmac.compare_digest(signature[9:], self._mac(key, expiry, blob)):
            raise UnsignedEntry(
                "Redis entry's signature does not match its key and bytes (forged, or moved from another key); "
                "ignored, never unpickled"
            )
        if expiry and expiry + EXPIRY_GRACE_SECONDS < time.time():
            raise UnsignedEntry("Redis entry's signed expiry has passed (a replayed entry); ignored, never unpickled")
        return blob

    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return func(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise BackendUnavailable(f"Redis at {redact_url(self.url)} unreachable ({type(exc).__name__})") from exc
        except redis.RedisError as exc:
            raise BackendUnavailable(f"Redis at {redact_url(self.url)} failed ({type(exc).__name__}: {exc})") from exc

    def get(self, key: str) -> Any | None:
        blob = self.get_raw(key)
        return None if blob is None else bytearray(blob)

    def get_raw(self, key: str) -> bytes | None:
        """The entry's bytes as stored, its signature checked (to copy it into the local disk cache)."""
        blob, signature = self._call(self.client.mget, f"{self.prefix}entry:{key}", f"{self.prefix}sig:{key}")
        return self._checked(key, None if blob is None else bytes(blob), signature)

    def set(self, key: str, packed: PackedEntry, info: EntryInfo, ttl: float | None) -> None:
        expire = max(1, round(ttl)) if ttl is not None else None
        pipe = self.client.pipeline()
        blob = packed.to_bytes()
        pipe.set(f"{self.prefix}entry:{key}", blob, ex=expire)
        expiry = int(time.time()) + expire + 1 if expire is not None else 0
        pipe.set(f"{self.prefix}sig:{key}", self._signature(key, expiry, blob), ex=expire)
        pipe.set(f"{self.prefix}meta:{key}", info.to_json(), ex=expire)
        pipe.delete(f"{self.prefix}hits:{key}")
        self._call(pipe.execute)

    def delete(self, key: str) -> bool:
        names = [f"{self.prefix}{part}:{key}" for part in ("entry", "meta", "hits", "sig")]
        return bool(self._call(self.client.delete, *names))

    def entries(self) -> list[EntryInfo]:
        out = []
        for raw in self._call(lambda: list(self.client.scan_iter(f"{self.prefix}meta:*", count=500))):
            key = raw.decode()[len(self.prefix) + 5 :]
            text, hits = self._call(self.client.mget, raw, f"{self.prefix}hits:{key}")
            if text is None:
                continue
            info = EntryInfo.from_json(text, self.backend)
            info.hits = int(hits or 0)
            out.append(info)
        return out

    def count_hit(self, key: str) -> None:
        self._call(self.client.incr, f"{self.prefix}hits:{key}")

    def ping(self) -> None:
        """Raise :class:`BackendUnavailable` unless Redis answers."""
        self._call(self.client.ping)
