"""The audit of requests that present no credential: the first per client and window, then one sum.

A request without any credential to an endpoint that needs one is worth knowing about,
but not worth an audit record of its own: each record is three fsyncs (the log, its head,
its anchor) and about 400 bytes, so anybody who can reach the server could make its disk
work and its audit log grow at will, for free (no strike: anonymous requests never lock
anybody out, see :mod:`sci_ext.server.auth`).  Here, per window (``window`` seconds from
the first such failure):

* the **first** failure of each client is audited at once, as before (``auth.failure``,
  reason ``missing``): the operator sees that it started;
* further failures of that client are only counted; when the window ends (a timer), when
  the process exits, or when :meth:`AnonymousFailureAudit.flush` is called, each client
  that failed more than once gets **one** ``auth.failure_summary`` record: its ``count``
  (every failure of the window, the first included), ``first`` and ``last`` times;
* at most ``max_clients`` clients are tracked per window; failures of further clients
  (rotating addresses) are summed into one record for the client ``(more clients)``,
  with the number of distinct clients seen (up to :data:`MAX_DISTINCT`).

So a flood costs at most ``2 * max_clients + 1`` records a window, whatever its size.
Failures that present a credential (a bad key, a malformed header, a Jupyter token of
someone else) are not handled here: each one is still audited on its own, and the lockout
bounds them.  Counters and hooks (``sci_auth_failures_total``, alerts) still see every
failure at once; only the audit records are summed.  A crash (SIGKILL, power cut) loses
the sums of the current window, never a first record or a credentialed failure.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DISTINCT", "MORE_CLIENTS", "AnonymousFailureAudit", "flush_all"]

log = logging.getLogger(__name__)

#: The client name of the record that sums the failures of clients beyond ``max_clients``.
MORE_CLIENTS = "(more clients)"
#: Distinct clients counted in that record at most (a bound on memory, not on the count).
MAX_DISTINCT = 10_000

Write = Callable[..., Any]

_live: weakref.WeakSet[AnonymousFailureAudit] = weakref.WeakSet()
_live_lock = threading.Lock()
_atexit_registered = False


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp * 1000) % 1000:03d}Z"


@dataclass
class _Tally:
    count: int
    first: float
    last: float


class AnonymousFailureAudit:
    """Audit failures without a credential: each client's first at once, the rest summed per window.

    ``write(event, **details)`` appends one audit record (the security manager's
    ``audit``).  ``clock`` gives wall-clock seconds (the records' ``first``/``last``).
    """

    def __init__(
        self,
        write: Write,
        *,
        window: float = 60.0,
        max_clients: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.write = write
        self.window = float(window)
        self.max_clients = int(max_clients)
        self.clock = clock
        self.records_written = 0
        # Lock order: _state, then _io. A first record is written holding _io, taken before
        # _state is released, so a flush (which swaps the tallies under _state, then writes
        # under _io) can never write a client's sum before that client's first record.
        self._state = threading.Lock()
        self._io = threading.Lock()
        self._tallies: dict[str, _Tally] = {}
        self._more: _Tally | None = None
        self._more_clients: set[str] = set()
        self._timer: threading.Timer | None = None
        _register(self)

    def note(self, client: str) -> None:
        """Count one failure without a credential from ``client``; audit it now if it is the first."""
        now = self.clock()
        self._state.acquire()
        try:
            if self._timer is None:
                self._timer = threading.Timer(self.window, self._on_timer)
                self._timer.daemon = True
                self._timer.start()
            tally = self._tallies.get(client)
            if tally is not None:
                tally.count += 1
                tally.last = now
                return
            if len(self._tallies) >= self.max_clients:
                if self._more is None:
                    self._more = _Tally(0, now, now)
                self._more.count += 1
                self._more.last = now
                if len(self._more_clients) < MAX_DISTINCT:
                    self._more_clients.add(client)
                return
            self._tallies[client] = _Tally(1, now, now)
            self._io.acquire()
        finally:
            self._state.release()
        try:
            self._write("auth.failure", client=client, reason="missing", key_id=None)
        finally:
            self._io.release()

    def pending(self) -> int:
        """Failures counted but not yet written in a sum (for tests and status)."""
        with self._state:
            extra = sum(t.count - 1 for t in self._tallies.values())
            return extra + (self._more.count if self._more else 0)

    def flush(self) -> int:
        """End the window now: write one sum per client that failed more than once; the records written."""
        with self._state:
            tallies, more, more_clients = self._tallies, self._more, self._more_clients
            self._tallies, self._more, self._more_clients = {}, None, set()
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        written = 0
        with self._io:
            for client, tally in tallies.items():
                if tally.count > 1:
                    written += self._summary(client, tally)
            if more is not None:
                distinct = len(more_clients)
                written += self._summary(MORE_CLIENTS, more, clients=distinct if distinct < MAX_DISTINCT else None)
        return written

    def _summary(self, client: str, tally: _Tally, **extra: Any) -> int:
        details = {
            "client": client,
            "reason": "missing",
            "count": tally.count,
            "first": _iso(tally.first),
            "last": _iso(tally.last),
            "window_seconds": self.window,
            **extra,
        }
        try:
            self._write("auth.failure_summary", **details)
        except Exception as exc:  # on a timer or at exit: say so, never raise into the caller
            log.warning("sci_ext: %d anonymous auth failure(s) from %s not audited: %s", tally.count, client, exc)
            return 0
        return 1

    def _write(self, event: str, **details: Any) -> None:
        self.write(event, **details)
        self.records_written += 1

    def _on_timer(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # a timer thread must not die with a traceback on stderr
            log.warning("sci_ext: anonymous auth failures not audited: %s", exc)

    def close(self) -> None:
        """Write what is pending and stop the timer."""
        self.flush()
        with _live_lock:
            _live.discard(self)


def _register(audit: AnonymousFailureAudit) -> None:
    global _atexit_registered
    with _live_lock:
        _live.add(audit)
        if not _atexit_registered:
            atexit.register(flush_all)
            _atexit_registered = True


def flush_all() -> None:
    """Flush every live aggregator (at exit; the server extension calls it when it stops)."""
    with _live_lock:
        live = list(_live)
    for audit in live:
        try:
            audit.flush()
        except Exception as exc:
            log.warning("sci_ext: anonymous auth failures not audited at exit: %s", exc)
