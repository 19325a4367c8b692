"""The machine-wide history of LLM calls, for ``jupyter sci llm``: SQLite under ``core.state_dir/llm``.

Every kernel and script appends its calls and cache savings (counts and costs only)
to ``usage.sqlite``; a background thread writes them in batches, so a call pays for
a queue append, not for a database commit.  Data, never pickles; the directory is
private (0700).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .events import LLMCall, LLMSaved, Subscription, on_llm_call, on_llm_saved
from .settings import current

__all__ = ["HistoryWriter", "flush", "install", "machine_usage", "path_for", "uninstall"]

_log = logging.getLogger("sci_ext.llm")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    started REAL, provider TEXT, model TEXT, endpoint TEXT, status TEXT,
    input INTEGER, cached_input INTEGER, cache_write INTEGER, output INTEGER, reasoning INTEGER,
    cost_usd REAL, duration REAL, correlation_id TEXT, kernel_id TEXT, pid INTEGER, stream INTEGER,
    model_requested TEXT, attempts INTEGER, rate_limited INTEGER, server_errors INTEGER
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started);
CREATE TABLE IF NOT EXISTS saved (
    ts REAL, source TEXT, name TEXT, calls INTEGER, cost_usd REAL, unknown_cost_calls INTEGER,
    correlation_id TEXT, pid INTEGER
);
"""


#: Columns added after the first release: an older database gets them on open (old rows: NULL).
_ADDED = (("model_requested", "TEXT"), ("attempts", "INTEGER"), ("rate_limited", "INTEGER"),
          ("server_errors", "INTEGER"))  # fmt: skip
_INSERT_CALL = (
    "INSERT INTO calls (started, provider, model, endpoint, status, input, cached_input, cache_write, output,"
    " reasoning, cost_usd, duration, correlation_id, kernel_id, pid, stream, model_requested, attempts,"
    " rate_limited, server_errors) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SAVED = "INSERT INTO saved VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT_CALLS = (
    "SELECT provider, model, endpoint, status, started, duration, input, cached_input, cache_write,"
    " output, reasoning, cost_usd, correlation_id, kernel_id, stream, COALESCE(model_requested, ''),"
    " COALESCE(attempts, 1), COALESCE(rate_limited, 0), COALESCE(server_errors, 0) FROM calls WHERE started >= ?"
)
_SELECT_SAVED = "SELECT COUNT(*), COALESCE(SUM(calls), 0), COALESCE(SUM(cost_usd), 0) FROM saved WHERE ts >= ?"
_SELECT_PIDS = "SELECT COUNT(DISTINCT pid) FROM calls WHERE started >= ?"


def path_for(state_dir: str) -> Path:
    """Where the history of ``state_dir`` lives."""
    return Path(state_dir) / "llm" / "usage.sqlite"


_PINS: dict[str, Any] = {}  # the history directories this process writes into (trust re-checks them)


def _connect(path: Path) -> sqlite3.Connection:
    from ..trust import connect_sqlite, pin_private_dir

    # issue 18 (review R4): the directory 0700 whatever the umask and pinned (health re-checks it)
    _PINS[str(path.parent)] = pin_private_dir(path.parent, what="LLM history directory")
    conn = connect_sqlite(path, what="LLM history", timeout=10, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    have = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    for column, kind in _ADDED:
        if column not in have:
            conn.execute(f"ALTER TABLE calls ADD COLUMN {column} {kind}")
    try:
        os.chmod(path, 0o600)
    except OSError:  # pragma: no cover - not the owner: the directory is private anyway
        pass
    return conn


class HistoryWriter:
    """A queue and the thread that drains it into the history database."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._warned = False

    def put(self, kind: str, item: Any, state_dir: str) -> None:
        """Queue one call or saving for the database of ``state_dir``."""
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sci_ext-llm-history", daemon=True)
                self._thread.start()
        self._queue.put((kind, (item, state_dir)))

    #: Seconds the writer gathers calls before one transaction: a busy loop of calls wakes it
    #: twice a second, not once a call (its work competes with the caller for the CPU and the GIL).
    BATCH_SECONDS = 0.5

    def _run(self) -> None:
        conns: dict[str, sqlite3.Connection] = {}
        while True:
            first = self._queue.get()
            if self._wake.wait(self.BATCH_SECONDS):
                self._wake.clear()
            batch = [first]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(entry is None for entry in batch)
            self._write([b for b in batch if b is not None], conns)
            with self._lock:
                self._pending -= sum(1 for b in batch if b is not None)
                self._idle.notify_all()
            if stop:
                for conn in conns.values():
                    conn.close()
                return

    def _write(self, batch: list[tuple[str, Any]], conns: dict[str, sqlite3.Connection]) -> None:
        by_dir: dict[str, list[tuple[str, Any]]] = {}
        for kind, (item, state_dir) in batch:
            by_dir.setdefault(state_dir, []).append((kind, item))
        pid = os.getpid()
        for state_dir, items in by_dir.items():
            try:
                conn = conns.get(state_dir)
                if conn is None:
                    conn = conns[state_dir] = _connect(path_for(state_dir))
                else:  # issue 18: the directory is still the one pinned (owner, inode) before each batch
                    _PINS[str(path_for(state_dir).parent)].recheck()
                calls = [_call_row(i, pid) for k, i in items if k == "call"]
                saved = [_saved_row(i, pid) for k, i in items if k == "saved"]
                conn.execute("BEGIN IMMEDIATE")
                if calls:
                    conn.executemany(_INSERT_CALL, calls)
                if saved:
                    conn.executemany(_INSERT_SAVED, saved)
                conn.execute("COMMIT")
            except Exception as exc:
                if not self._warned:
                    self._warned = True
                    _log.warning("sci_ext: LLM history in %s not written (%s)", state_dir, exc)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._lock:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True


def _call_row(c: LLMCall, pid: int) -> tuple[Any, ...]:
    return (
        c.started, c.provider, c.model, c.endpoint, c.status, c.input, c.cached_input, c.cache_write,
        c.output, c.reasoning, c.cost_usd, c.duration, c.correlation_id, c.kernel_id, pid, int(c.stream),
        c.model_requested, c.attempts, c.rate_limited, c.server_errors,
    )  # fmt: skip


def _saved_row(s: LLMSaved, pid: int) -> tuple[Any, ...]:
    return (time.time(), s.source, s.name, s.calls, s.cost_usd, s.unknown_cost_calls, s.correlation_id, pid)


WRITER = HistoryWriter()


def _on_call(call: LLMCall) -> None:
    settings = current()
    if settings.history:
        WRITER.put("call", call, settings.state_dir)


def _on_saved(saved: LLMSaved) -> None:
    settings = current()
    if settings.history:
        WRITER.put("saved", saved, settings.state_dir)


_SUBSCRIPTION = Subscription((on_llm_call, _on_call), (on_llm_saved, _on_saved))
#: Write every recorded call and saving to the history (idempotent).
install = _SUBSCRIPTION.install
#: Stop writing (what is queued is still written).
uninstall = _SUBSCRIPTION.uninstall


def flush(timeout: float = 10.0) -> bool:
    """Wait for queued records to reach the database."""
    return WRITER.flush(timeout)


atexit.register(flush, 5.0)


def machine_usage(state_dir: str, since: float | None = None, model: str | None = None) -> dict[str, Any]:
    """Totals of every process on the machine that shares ``state_dir``: as :func:`~.usage.get_llm_usage`.

    ``model`` keeps the calls that requested it or were served by it.
    """
    from .usage import summarize

    path = path_for(state_dir)
    empty = {"models": [], "total": summarize([])["total"], "saved": {"hits": 0, "calls": 0, "cost_usd": 0.0}}
    if not path.exists():
        return {**empty, "path": str(path)}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        args = (since if since is not None else float("-inf"),)
        rows = conn.execute(_SELECT_CALLS, args).fetchall()
        saved = conn.execute(_SELECT_SAVED, args).fetchone()
        kernels = conn.execute(_SELECT_PIDS, args).fetchone()[0]
    finally:
        conn.close()
    calls = [
        LLMCall(
            provider=r[0], model=r[1], endpoint=r[2], status=r[3], started=r[4], duration=r[5], input=r[6],
            cached_input=r[7], cache_write=r[8], output=r[9], reasoning=r[10], cost_usd=r[11],
            correlation_id=r[12], kernel_id=r[13], stream=bool(r[14]), model_requested=r[15], attempts=r[16],
            rate_limited=r[17], server_errors=r[18],
        )
        for r in rows
    ]  # fmt: skip
    if model is not None:
        calls = [c for c in calls if model in c.models()]
    out = summarize(calls)
    out["saved"] = {"hits": saved[0], "calls": saved[1], "cost_usd": saved[2]}
    out["processes"] = kernels
    out["path"] = str(path)
    return out
