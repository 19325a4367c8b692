"""Circuit breakers: stop calling a dependency that keeps failing, try again later.

closed --(``fail_max`` consecutive failures)--> open --(``reset_timeout``)-->
half-open (one trial call at a time) --success--> closed / --failure--> open.

Unlike pybreaker, calls through a closed breaker are not serialised: the fast path
is one read of the shared record and no lock, and only failures and state changes
write.  ``KeyboardInterrupt`` (and any non-``Exception``) never counts as a failure;
by default only transient errors (see :func:`classify_error`) count, because a
``ValueError`` or a 404 says nothing about the dependency's health.

Whoever opens a shared breaker writes its ``reset_timeout`` and the next-trial
time (``retry_at``) into the shared record; every process follows the record, not
its own setting, so kernels with different settings agree about the state.

State is shared by name through a store (see :mod:`.store`): threads (memory),
every kernel on the machine (diskcache under ``core.state_dir``, the default), or
every machine (Redis, when ``breaker.redis_url`` or ``cache.redis_url`` is set).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timezone
from typing import Any, ParamSpec, TypeVar, cast

from ..errors import CircuitOpenError
from .hooks import BreakerEvent, on_breaker_change
from .retry import RetryOn, make_retry_predicate
from .store import Record, StateStore, resolve_store

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker", "breakers", "circuit_breaker", "get_breaker"]

P = ParamSpec("P")
R = TypeVar("R")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
#: ``sci_breaker_state`` gauge values.
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


def _closed(failures: int = 0) -> Record:
    return {"state": CLOSED, "failures": failures, "opened_at": 0.0, "trial_id": "", "trial_until": 0.0}


def _clock(when: float) -> str:
    """``when`` (epoch seconds) as ``HH:MM:SS UTC``."""
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%H:%M:%S UTC")


class CircuitBreaker:
    """A named circuit breaker whose state is shared through ``store``.

    ``fail_max``/``reset_timeout`` default to the ``breaker`` config section.
    ``counts`` says which errors count as failures (like ``on=`` of
    :func:`retry_with_backoff`; default: the transient categories).
    ``trial_timeout`` bounds how long a half-open trial may block other trials
    (so a kernel that died mid-trial cannot keep the breaker shut).

    Use it as a decorator (sync or async), with :meth:`call` / :meth:`acall`, or
    as ``with breaker.protect(): ...``.
    """

    def __init__(
        self,
        name: str,
        fail_max: int | None = None,
        reset_timeout: float | None = None,
        *,
        store: str | StateStore | None = None,
        counts: RetryOn = None,
        trial_timeout: float | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"circuit breaker: name must be a non-empty string, got {name!r}")
        if fail_max is not None and (not isinstance(fail_max, int) or fail_max < 1):
            raise ValueError(f"circuit breaker {name!r}: fail_max must be an int >= 1, got {fail_max!r}")
        if reset_timeout is not None and not reset_timeout >= 0:
            raise ValueError(f"circuit breaker {name!r}: reset_timeout must be >= 0, got {reset_timeout!r}")
        self.name = name
        self._fail_max = fail_max
        self._reset_timeout = reset_timeout
        self._trial_timeout = trial_timeout
        self.counts_as_failure = make_retry_predicate(counts)
        from ..config import get_config

        cfg: Any = get_config()
        redis_url = cfg.breaker.redis_url or cfg.cache.redis_url
        self.store: StateStore = resolve_store(store, "breakers", redis_url)
        self._listeners: list[Callable[[BreakerEvent], Any]] = []
        self._local = threading.local()

    # -- settings (read from config when not given, so runtime changes apply)

    @property
    def fail_max(self) -> int:
        """Consecutive failures that open the breaker."""
        if self._fail_max is not None:
            return self._fail_max
        from ..config import get_config

        return int(get_config().breaker.fail_max)

    @property
    def reset_timeout(self) -> float:
        """Seconds an open breaker waits before letting one trial call through."""
        if self._reset_timeout is not None:
            return self._reset_timeout
        from ..config import get_config

        return float(get_config().breaker.reset_timeout)

    @property
    def trial_timeout(self) -> float:
        """Seconds after which an unfinished trial stops blocking the next one."""
        return self._trial_timeout if self._trial_timeout is not None else max(60.0, self.reset_timeout)

    # -- state

    def _record(self) -> Record:
        return self.store.load(self.name) or _closed()

    def _retry_at(self, record: Record) -> float:
        """When an open ``record`` lets its next trial through: decided by the shared record.

        The process that opened the breaker stores its reset timeout and the resulting
        ``retry_at`` in the record, so every kernel sharing it agrees; a record written
        before those fields existed falls back to this process's ``reset_timeout``.
        """
        retry_at = record.get("retry_at")
        if isinstance(retry_at, (int, float)) and not isinstance(retry_at, bool):
            return float(retry_at)
        return float(record["opened_at"]) + self.reset_timeout

    def _shared_reset_timeout(self, record: Record) -> float:
        """The reset timeout the shared record was opened with (this process's when it has none)."""
        value = record.get("reset_timeout")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return self.reset_timeout

    def _opened(self, current: Record, now: float, failures: int, reset_timeout: float) -> Record:
        """``current`` opened at ``now``: the shared record carries when its next trial is."""
        return {
            **current,
            "state": OPEN,
            "failures": failures,
            "opened_at": now,
            "reset_timeout": reset_timeout,
            "retry_at": now + reset_timeout,
            "trial_id": "",
            "trial_until": 0.0,
        }

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open`` (open whose shared next-trial time has passed)."""
        record = self._record()
        if record["state"] == OPEN and time.time() >= self._retry_at(record):
            return HALF_OPEN
        return str(record["state"])

    @property
    def failures(self) -> int:
        """Consecutive failures counted so far."""
        return int(self._record()["failures"])

    def add_listener(self, callback: Callable[[BreakerEvent], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` on this breaker's state changes; returns a remover."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _changed(self, old: str, new: str, failures: int) -> None:
        if old == new:
            return
        event = BreakerEvent(self.name, old, new, failures)
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:
                import logging

                logging.getLogger("sci_ext.resilience").exception("breaker listener failed")
        on_breaker_change.emit(event)

    def _open_error(self, record: Record, now: float) -> CircuitOpenError:
        """The refusal, saying what the shared record says (not this process's settings).

        Open: when the next trial is.  Half-open: a trial is running; its outcome
        decides (success closes, failure reopens for the shared reset timeout), and
        an unfinished trial is abandoned at ``trial_until``.  ``retry_after`` is then
        when it is worth asking again: the shared reset timeout, at most the time left
        of the trial's lease.
        """
        reset_timeout = self._shared_reset_timeout(record)
        if record["state"] == HALF_OPEN:
            trial_until = float(record["trial_until"])
            lease_left = max(0.0, trial_until - now)
            retry_at = now + min(reset_timeout, lease_left)
            trial_timeout = record.get("trial_timeout")
            started = f" started {now - (trial_until - float(trial_timeout)):.1f} s ago" if trial_timeout else ""
            text = (
                f"is half-open: a trial call{started} is in progress; if it succeeds calls go through again, "
                f"if it fails the breaker reopens for {reset_timeout:g} s; a trial still unfinished "
                f"in {lease_left:.1f} s (at {_clock(trial_until)}) is abandoned and the next call becomes the trial"
            )
        else:
            retry_at = self._retry_at(record)
            remaining = max(0.0, retry_at - now)
            text = (
                f"is open after {record['failures']} consecutive failures; "
                f"next trial in {remaining:.1f} s (at {_clock(retry_at)})"
            )
            if reset_timeout != self.reset_timeout:
                text += (
                    f"; the shared reset timeout is {reset_timeout:g} s "
                    f"(set where it opened; this process's is {self.reset_timeout:g} s)"
                )
        error = CircuitOpenError(f"circuit breaker {self.name!r} {text}")
        error.breaker = self.name  # type: ignore[attr-defined]
        error.retry_at = retry_at  # type: ignore[attr-defined]
        error.retry_after = max(0.0, retry_at - now)  # type: ignore[attr-defined]
        return error

    # -- the protocol around one call

    def before_call(self) -> str | None:
        """Admit a call or raise :class:`CircuitOpenError`.

        Returns ``None`` for an ordinary call through a closed breaker, or a trial
        token when this call is the half-open trial; pass it to :meth:`on_success`,
        :meth:`on_failure` or :meth:`on_abort`.
        """
        record = self.store.load(self.name)
        if record is None or record["state"] == CLOSED:
            return None  # the fast path: one read, no lock, no write
        now = time.time()
        if record["state"] == OPEN and now < self._retry_at(record):
            raise self._open_error(record, now)
        if record["state"] == HALF_OPEN and now < record["trial_until"]:
            raise self._open_error(record, now)
        token = uuid.uuid4().hex
        trial_timeout = self.trial_timeout

        def take_trial(current: Record | None) -> Record | None:
            if current is None or current["state"] == CLOSED:
                return None
            if current["state"] == OPEN and now < self._retry_at(current):
                return None
            if current["state"] == HALF_OPEN and now < current["trial_until"]:
                return None
            return {
                **current,
                "state": HALF_OPEN,
                "trial_id": token,
                "trial_until": now + trial_timeout,
                "trial_timeout": trial_timeout,
            }

        after = self.store.update(self.name, take_trial)
        if after is None or after["state"] == CLOSED:
            return None  # someone closed it meanwhile
        if after.get("trial_id") != token:
            raise self._open_error(after, now)
        if record["state"] == OPEN:
            self._changed(OPEN, HALF_OPEN, int(after["failures"]))
        return token

    def on_success(self, token: str | None) -> None:
        """Record a successful call (``token`` from :meth:`before_call`)."""
        if token is None:
            record = self.store.load(self.name)
            if record is None or (record["state"] == CLOSED and not record["failures"]):
                return  # nothing to reset: no write
        seen: list[str] = []

        def succeed(current: Record | None) -> Record | None:
            seen[:] = [current["state"] if current else CLOSED]
            if current is None:
                return None
            if current["state"] == HALF_OPEN and token is not None and current["trial_id"] == token:
                return _closed()
            if current["state"] == CLOSED and current["failures"]:
                return _closed()
            return None  # open, or someone else's trial: a late success proves little

        after = self.store.update(self.name, succeed)
        if seen and after is not None:
            self._changed(seen[0], after["state"], int(after["failures"]))

    def on_failure(self, token: str | None, error: BaseException | None = None) -> None:
        """Record a failed call; ``error`` not counting as a failure is treated as success-neutral."""
        if error is not None and not self.counts_as_failure(error):
            self.on_abort(token)
            return
        now = time.time()
        fail_max, reset_timeout = self.fail_max, self.reset_timeout
        seen: list[str] = []

        def fail(current: Record | None) -> Record | None:
            current = current or _closed()
            seen[:] = [current["state"]]
            failures = int(current["failures"]) + 1
            if current["state"] == HALF_OPEN and token is not None and current["trial_id"] == token:
                return self._opened(current, now, failures, reset_timeout)
            if current["state"] == CLOSED:
                if failures >= fail_max:
                    return self._opened(current, now, failures, reset_timeout)
                return {**current, "failures": failures}
            return None  # already open: a late failure does not push the trial back

        after = self.store.update(self.name, fail)
        if seen and after is not None:
            self._changed(seen[0], after["state"], int(after["failures"]))

    def on_abort(self, token: str | None) -> None:
        """The call ended without a verdict (interrupted, or an error that does not count)."""
        if token is None:
            return

        def release(current: Record | None) -> Record | None:
            if current and current["state"] == HALF_OPEN and current["trial_id"] == token:
                return {**current, "trial_id": "", "trial_until": 0.0}  # the next caller may try
            return None

        self.store.update(self.name, release)

    # -- ways to use it

    def call(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """Call ``fn`` through the breaker."""
        token = self.before_call()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self.on_failure(token, exc)
            raise
        except BaseException:
            self.on_abort(token)  # KeyboardInterrupt, SystemExit: never a failure
            raise
        self.on_success(token)
        return result

    async def acall(self, fn: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R:
        """Await ``fn`` through the breaker."""
        token = self.before_call()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            self.on_failure(token, exc)
            raise
        except BaseException:
            self.on_abort(token)
            raise
        self.on_success(token)
        return result

    @contextlib.contextmanager
    def protect(self) -> Iterator[None]:
        """``with breaker.protect(): ...`` runs the block through the breaker."""
        token = self.before_call()
        try:
            yield
        except Exception as exc:
            self.on_failure(token, exc)
            raise
        except BaseException:
            self.on_abort(token)
            raise
        self.on_success(token)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a sync or async function."""
        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.acall(afn, *args, **kwargs)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def reset(self) -> None:
        """Close the breaker and forget its failures (everywhere it is shared)."""
        old = self.state
        self.store.delete(self.name)
        self._changed(old, CLOSED, 0)

    def trip(self) -> None:
        """Open the breaker now (for maintenance windows and demos)."""
        old = self.state
        now, reset_timeout = time.time(), self.reset_timeout

        def open_now(current: Record | None) -> Record:
            current = current or _closed()
            return self._opened(current, now, int(current["failures"]), reset_timeout)

        self.store.update(self.name, open_now)
        self._changed(old, OPEN, self.failures)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self.state} failures={self.failures} store={self.store.description}>"


_registry: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def circuit_breaker(
    name: str,
    fail_max: int | None = None,
    reset_timeout: float | None = None,
    *,
    store: str | StateStore | None = None,
    counts: RetryOn = None,
    trial_timeout: float | None = None,
) -> CircuitBreaker:
    """The breaker called ``name`` (created, or re-created with new settings).

    Every breaker with the same name and store shares one state, so
    ``@circuit_breaker("openai")`` on several functions, cells and kernels trips
    together.
    """
    breaker = CircuitBreaker(name, fail_max, reset_timeout, store=store, counts=counts, trial_timeout=trial_timeout)
    with _registry_lock:
        _registry[name] = breaker
    return breaker


def get_breaker(name: str) -> CircuitBreaker | None:
    """The breaker last made by :func:`circuit_breaker` under ``name`` in this process."""
    return _registry.get(name)


def breakers() -> dict[str, CircuitBreaker]:
    """Every breaker made by :func:`circuit_breaker` in this process, by name."""
    with _registry_lock:
        return dict(_registry)
