"""Small shared records (breaker states, token buckets) with atomic read-modify-write.

Three stores, one interface:

* :class:`MemoryStore` - this process only (threads).
* :class:`DiskStore` - every process on the machine, through a SQLite database of
  JSON records under ``core.state_dir`` (data, never pickle: a record cannot run
  code, CVE-2025-69872); updates run in an immediate transaction, and a
  memory-mapped file of change counters (:mod:`.generations`) lets readers skip
  the database while a record has not changed.  The directory is private (0700,
  owner checked by :mod:`sci_ext.core.trust`).
* :class:`RedisStore` - every machine using the Redis server; updates use
  ``WATCH``/``MULTI`` (optimistic, retried on conflict).  When Redis cannot be
  reached it degrades to a local :class:`DiskStore` and logs a warning, so a Redis
  outage never breaks the calls it protects.

``update(key, change)`` calls ``change(current)`` (``None`` when absent); returning
a new dict stores it, returning ``None`` keeps the record.  ``change`` may run more
than once (Redis conflicts), so it must not have side effects.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from .generations import MAGIC, GenerationFile, slot_of

__all__ = ["DiskStore", "MemoryStore", "Record", "RedisStore", "StateStore", "resolve_store", "store_keys"]

Record = dict[str, Any]
Change = Callable[[Record | None], Record | None]

_log = logging.getLogger("sci_ext.resilience")


class StateStore(Protocol):
    """Where shared records live."""

    description: str

    def load(self, key: str) -> Record | None:
        """The record stored under ``key``, or ``None``."""
        ...

    def update(self, key: str, change: Change) -> Record | None:
        """Atomically apply ``change``; return the record stored afterwards."""
        ...

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        ...


class MemoryStore:
    """Records shared by the threads of this process."""

    description = "memory (this process)"

    def __init__(self) -> None:
        self._data: dict[str, Record] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> Record | None:
        """The record under ``key`` (a plain dict read: no lock on the fast path)."""
        return self._data.get(key)

    def update(self, key: str, change: Change) -> Record | None:
        """Apply ``change`` under this store's lock."""
        with self._lock:
            new = change(self._data.get(key))
            if new is not None:
                self._data[key] = new
            return self._data.get(key)

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._data.pop(key, None)

    def keys(self) -> list[str]:
        """Every key stored (the status API lists breakers with it)."""
        return list(self._data)


class _Records:
    """A SQLite table of JSON records, one connection per thread (and per process after a fork)."""

    def __init__(self, path: Path) -> None:
        from ..trust import open_private

        self.path = path
        # Created 0600 without following a symlink before SQLite opens it (its -wal/-shm get the same mode).
        os.close(open_private(path, os.O_RDWR, what="state database"))
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.connection().execute(
            "CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
        )

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use; a forked child opens its own)."""
        local = self._local
        con: sqlite3.Connection | None = getattr(local, "con", None)
        if con is None or local.pid != os.getpid():
            con = sqlite3.connect(str(self.path), timeout=10, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            local.con, local.pid = con, os.getpid()
            with self._lock:
                self._connections.append(con)
        return con

    def get(self, key: str, con: sqlite3.Connection | None = None) -> Record | None:
        row = (con or self.connection()).execute("SELECT value FROM records WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except ValueError:
            _log.warning("state record %r in %s is not valid JSON; ignored", key, self.path)
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, record: Record, con: sqlite3.Connection | None = None) -> None:
        text = json.dumps(record, separators=(",", ":"))
        (con or self.connection()).execute("INSERT OR REPLACE INTO records (key, value) VALUES (?, ?)", (key, text))

    def delete(self, key: str) -> None:
        self.connection().execute("DELETE FROM records WHERE key = ?", (key,))

    def keys(self) -> list[str]:
        """Every key stored."""
        return [row[0] for row in self.connection().execute("SELECT key FROM records ORDER BY key")]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate transaction: a write lock shared with every process."""
        con = self.connection()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for con in connections:
            with contextlib.suppress(sqlite3.Error):
                con.close()
        self._local = threading.local()


class DiskStore:
    """Records shared by every process on this machine (JSON in SQLite under ``directory``).

    Reads are served from this process's copy of a record while the record's
    counter in the shared :class:`~.generations.GenerationFile` (``generations``
    next to the database) has not moved, so an unchanged record costs two 8-byte
    memory reads instead of a SQLite query.  Every write bumps the counter (see
    that module for the protocol), so a change made by any process is seen by the
    next read everywhere.  ``generations=False``, or a generation file that cannot
    be used, reads the database every time.
    """

    #: Name of the generation file inside ``directory``.
    GENERATIONS_FILE = "generations"
    #: Name of the database inside ``directory`` (JSON records; an older ``cache.db``
    #: of pickles from diskcache is never read).
    DATABASE_FILE = "records.sqlite3"
    #: Seconds between two attempts of a reader to re-open an unusable generation file.
    REOPEN_INTERVAL = 1.0

    def __init__(self, directory: str | Path, *, generations: bool = True) -> None:
        from ..trust import pin_private_dir

        # Another user able to write here could change what every kernel believes
        # about a service: the directory must be private (0700, ours, checked), and it
        # is pinned so health re-checks it (issue 18, review R4).
        self._pin = pin_private_dir(Path(directory), what="state directory")
        self.directory = self._pin.path
        self.description = f"disk ({self.directory})"
        self._records = _Records(self.directory / self.DATABASE_FILE)
        # key -> (counters it was read under, slot, counter value, record)
        self._seen: dict[str, tuple[memoryview, int, int, Record | None]] = {}
        self._lock = threading.Lock()
        self._use_generations = generations
        self._next_open = 0.0
        self._generations = GenerationFile.open(self.generations_path) if generations else None

    @property
    def generations_path(self) -> Path:
        """Where the generation file lives."""
        return self.directory / self.GENERATIONS_FILE

    def _get(self, key: str) -> Record | None:
        return self._records.get(key)

    def _put(self, key: str, record: Record) -> None:
        """Write ``record`` without bumping its counter (tests: a change readers must not see)."""
        self._records.put(key, record)

    def load(self, key: str) -> Record | None:
        """The record under ``key``: this process's copy while its counter is unchanged, else one SQLite read."""
        seen = self._seen.get(key)
        if seen is not None:
            words, slot, generation, record = seen
            if words[slot] == generation and words[0] == MAGIC:
                return record
        return self._read(key)

    def _read(self, key: str) -> Record | None:
        generations = self._readable()
        if generations is None:
            self._seen.pop(key, None)
            return self._get(key)
        words, slot = generations.words, slot_of(key)
        generation = words[slot]  # read *before* the record: a later change moves it again
        trusted = words[0] == MAGIC and not generation & 1  # odd: a write is in progress
        record = self._get(key)
        if trusted:
            self._seen[key] = (words, slot, generation, record)
        else:
            self._seen.pop(key, None)
        return record

    def _readable(self) -> GenerationFile | None:
        """The generation file if its counters can be trusted, re-opening it now and then if not."""
        generations = self._generations
        if generations is not None and generations.valid:
            return generations
        if not self._use_generations or time.monotonic() < self._next_open:
            return None
        with self._lock:
            generations = self._writable()
        return generations if generations is not None and generations.valid else None

    def _writable(self) -> GenerationFile | None:
        """The generation file to bump, re-opened when replaced, damaged or inherited by fork; under ``_lock``."""
        generations = self._generations
        if generations is not None and generations.is_current():
            return generations
        if not self._use_generations:
            return None
        # A writer always tries (a write that bumps no counter would go unseen by readers
        # that have the file); readers only every REOPEN_INTERVAL (see _readable).
        self._next_open = time.monotonic() + self.REOPEN_INTERVAL
        if generations is not None:
            if generations.replaced():
                generations.retire()  # processes still mapping it fall back to the store and re-open
            generations.detach()  # keep the mapping: other threads and cached entries may hold it
        self._generations = GenerationFile.open(self.generations_path)
        return self._generations

    @contextlib.contextmanager
    def _writing(self, key: str) -> Iterator[Callable[[Record | None], None]]:
        """Serialise a write to ``key`` and bump its counter around it; yields a ``remember(record)``."""
        written: list[Record | None] = []
        with self._lock:
            generations = self._writable()
            if generations is None:
                self._seen.pop(key, None)
                yield written.append
                return
            slot = slot_of(key)
            with generations.locked():
                generations.begin(slot)
                try:
                    yield written.append
                finally:
                    generation = generations.end(slot)
            if written and generations.valid:
                self._seen[key] = (generations.words, slot, generation, written[0])
            else:
                self._seen.pop(key, None)

    def update(self, key: str, change: Change) -> Record | None:
        """Apply ``change`` inside an immediate SQLite transaction (a cross-process lock)."""
        with self._writing(key) as remember:
            with self._records.transaction() as con:
                current = self._records.get(key, con)
                new = change(current)
                if new is not None:
                    self._records.put(key, new, con)
            after = new if new is not None else current
            remember(after)
        return after

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        with self._writing(key) as remember:
            self._records.delete(key)
            remember(None)

    def keys(self) -> list[str]:
        """Every key stored, by any process."""
        return self._records.keys()

    def close(self) -> None:
        """Close the database connection and the generation file."""
        with self._lock:
            self._seen.clear()
            if self._generations is not None:
                self._generations.close()
                self._generations = None
            self._use_generations = False
        self._records.close()


class RedisStore:
    """Records shared through a Redis server; degrades to ``fallback`` when it is down."""

    #: Seconds between two "Redis unreachable" warnings.
    WARN_INTERVAL = 60.0
    #: After a connection error, seconds to use the fallback without trying Redis
    #: (so an unreachable host does not add a connect timeout to every call).
    RETRY_INTERVAL = 5.0

    def __init__(self, url: str, prefix: str, fallback: StateStore, signing_key: str | None = None) -> None:
        import redis

        # Issue 18: with a signing key (``cache.redis_signing_key``) every record is sealed with
        # an HMAC over its Redis key and JSON; a record without a valid seal (written by a user
        # who does not hold the key, or moved from another key) is ignored, never obeyed.
        self._signing_key = signing_key.encode("utf-8") if signing_key else None
        self._warned_forged: set[str] = set()
        self.url = url
        self.prefix = prefix
        self.fallback = fallback
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", maxsplit=1)[-1]  # never show credentials embedded in the URL
        self.description = f"redis ({host}{parts.path})"
        self._client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._errors: tuple[type[BaseException], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
        )
        self._watch_error = redis.exceptions.WatchError
        self._last_warning = 0.0
        self._down_until = 0.0

    def _is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _degraded(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._down_until = now + self.RETRY_INTERVAL
        if now - self._last_warning > self.WARN_INTERVAL:
            self._last_warning = now
            _log.warning("Redis at %s unreachable (%s); using local state until it is back", self.description, exc)

    def _mac(self, full: str, body: str) -> str:
        import hashlib
        import hmac

        assert self._signing_key is not None  # nosec B101  # checked by the callers
        return hmac.new(self._signing_key, full.encode() + b"\0" + body.encode(), hashlib.sha256).hexdigest()

    def _seal(self, full: str, record: Record) -> str:
        """The JSON stored under ``full``: the record, sealed when there is a signing key."""
        if self._signing_key is None:
            return json.dumps(record)
        body = json.dumps(record, sort_keys=True)
        return json.dumps({"sealed": body, "mac": self._mac(full, body)})

    def _open(self, full: str, raw: Any) -> Record | None:
        """The record stored under ``full``; ``None`` for nothing, or for a seal that does not verify."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if self._signing_key is None:
            return data if isinstance(data, dict) else None
        import hmac

        if (
            isinstance(data, dict)
            and isinstance(data.get("sealed"), str)
            and isinstance(data.get("mac"), str)
            and hmac.compare_digest(data["mac"], self._mac(full, data["sealed"]))
        ):
            record = json.loads(data["sealed"])
            return record if isinstance(record, dict) else None
        if full not in self._warned_forged:
            self._warned_forged.add(full)
            _log.warning(
                "Redis record %s is not signed with cache.redis_signing_key (written by someone without "
                "the key, or moved from another key): ignored",
                full,
            )
        return None

    def load(self, key: str) -> Record | None:
        """The record under ``key`` (one ``GET``)."""
        if self._is_down():
            return self.fallback.load(key)
        try:
            raw = self._client.get(self.prefix + key)
        except self._errors as exc:
            self._degraded(exc)
            return self.fallback.load(key)
        return self._open(self.prefix + key, raw)

    def update(self, key: str, change: Change) -> Record | None:
        """Apply ``change`` in a ``WATCH``/``MULTI`` transaction, retried on conflict."""
        full = self.prefix + key
        if self._is_down():
            return self.fallback.update(key, change)
        try:
            with self._client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(full)
                        raw = pipe.get(full)
                        current = self._open(full, raw)
                        new = change(current)
                        if new is None:
                            pipe.unwatch()
                            return current
                        pipe.multi()
                        pipe.set(full, self._seal(full, new))
                        pipe.execute()
                        return new
                    except self._watch_error:
                        continue  # someone else changed it first: read again
        except self._errors as exc:
            self._degraded(exc)
            return self.fallback.update(key, change)

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        if self._is_down():
            self.fallback.delete(key)
            return
        try:
            self._client.delete(self.prefix + key)
        except self._errors as exc:
            self._degraded(exc)
            self.fallback.delete(key)

    def keys(self) -> list[str]:
        """Every key under this store's prefix (``SCAN``); the fallback's keys when Redis is down."""
        if self._is_down():
            return store_keys(self.fallback)
        try:
            raw = list(self._client.scan_iter(match=self.prefix + "*", count=500))
        except self._errors as exc:
            self._degraded(exc)
            return store_keys(self.fallback)
        out = [(k.decode() if isinstance(k, bytes) else str(k))[len(self.prefix) :] for k in raw]
        return sorted(out)


def store_keys(store: StateStore) -> list[str]:
    """The keys of ``store`` (``[]`` for a store that cannot list them)."""
    keys = getattr(store, "keys", None)
    return list(keys()) if callable(keys) else []


_memory_stores: dict[str, MemoryStore] = {}
_shared_stores: dict[tuple[Any, ...], StateStore] = {}
_stores_lock = threading.Lock()


def resolve_store(spec: str | StateStore | None, namespace: str, redis_url: str | None = None) -> StateStore:
    """The store for ``spec``: a store object, ``"memory"``, ``"disk"``, ``"redis"`` or ``None``/``"auto"``.

    ``auto`` is Redis when ``redis_url`` is given, else disk under
    ``core.state_dir/<namespace>``.  Stores are cached so every breaker or bucket of
    a process shares one connection.
    """
    if spec is not None and not isinstance(spec, str):
        return spec
    kind = spec or "auto"
    if kind not in ("auto", "memory", "disk", "redis"):
        raise ValueError(f"store: expected 'auto', 'memory', 'disk' or 'redis', got {kind!r}")
    if kind == "memory":
        with _stores_lock:
            return _memory_stores.setdefault(namespace, MemoryStore())
    from ..config import get_config

    directory = os.path.join(get_config().core.state_dir, namespace)
    if kind == "redis" and not redis_url:
        raise ValueError("store='redis' needs a Redis URL (breaker.redis_url or cache.redis_url)")
    with _stores_lock:
        disk = _shared_stores.get(("disk", directory))
        if disk is None:
            from ..trust import ensure_private_dir

            ensure_private_dir(get_config().core.state_dir, what="core.state_dir")  # 0700 (0755 tightened)
            disk = _shared_stores[("disk", directory)] = DiskStore(directory)
        if kind == "disk" or not redis_url:
            return disk
        key = get_config().cache.redis_signing_key
        cache_key = ("redis", f"{redis_url}|{namespace}", key)
        store = _shared_stores.get(cache_key)
        if store is None:
            store = _shared_stores[cache_key] = RedisStore(
                redis_url, f"sci_ext:{namespace}:", fallback=disk, signing_key=key
            )
        return store
