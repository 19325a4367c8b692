"""Circuit breakers: the state machine, concurrency, listeners, and sharing through disk."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from guard_fixtures import run_breaker_process

from sci_ext.core import get_config_manager
from sci_ext.core.errors import CircuitOpenError, TransientError
from sci_ext.core.resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerEvent,
    CircuitBreaker,
    breakers,
    circuit_breaker,
    get_breaker,
    on_breaker_change,
)

REPO = Path(__file__).resolve().parents[2]


def fail() -> None:
    raise TransientError("down")


def ok() -> str:
    return "ok"


class FakeClock:
    """Stands in for the breaker module's ``time``: ``time()`` moves only on ``advance``."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    from sci_ext.core.resilience import breaker as breaker_module

    fake = FakeClock()
    monkeypatch.setattr(breaker_module, "time", fake)
    return fake


@pytest.fixture(params=["memory", "disk"])
def store(request) -> str:
    return request.param


def test_opens_after_exactly_fail_max_consecutive_failures(store):
    breaker = CircuitBreaker(f"api-{store}", fail_max=3, reset_timeout=60, store=store)
    for expected in (1, 2):
        with pytest.raises(TransientError):
            breaker.call(fail)
        assert breaker.state == CLOSED and breaker.failures == expected
    with pytest.raises(TransientError):
        breaker.call(fail)
    assert breaker.state == OPEN
    calls = []
    with pytest.raises(CircuitOpenError, match=r"'api-\w+' is open after 3 consecutive failures; next trial in"):
        breaker.call(calls.append, 1)
    assert calls == []  # fail fast: the function did not run


def test_a_success_resets_the_count(store):
    breaker = CircuitBreaker(f"reset-{store}", fail_max=2, store=store)
    with pytest.raises(TransientError):
        breaker.call(fail)
    assert breaker.call(ok) == "ok"
    assert breaker.failures == 0
    with pytest.raises(TransientError):
        breaker.call(fail)
    assert breaker.state == CLOSED


def test_half_open_trial_closes_or_reopens(store, clock):
    breaker = CircuitBreaker(f"trial-{store}", fail_max=1, reset_timeout=60, store=store)
    with pytest.raises(TransientError):
        breaker.call(fail)
    assert breaker.state == OPEN
    clock.advance(61)
    assert breaker.state == HALF_OPEN
    with pytest.raises(TransientError):
        breaker.call(fail)  # the trial fails: open again, with a fresh timeout
    assert breaker.state == OPEN
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)
    clock.advance(61)
    assert breaker.call(ok) == "ok"
    assert breaker.state == CLOSED and breaker.failures == 0


def test_half_open_lets_exactly_one_trial_through_concurrently(store, clock):
    breaker = CircuitBreaker(f"one-{store}", fail_max=1, reset_timeout=60, store=store)
    with pytest.raises(TransientError):
        breaker.call(fail)
    clock.advance(61)
    started = threading.Event()
    release = threading.Event()
    ran: list[int] = []
    refused: list[int] = []

    def trial() -> str:
        ran.append(1)
        started.set()
        release.wait(5)
        return "ok"

    def caller() -> None:
        try:
            breaker.call(trial)
        except CircuitOpenError:
            refused.append(1)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert started.wait(5)
    deadline = time.monotonic() + 5
    while len(refused) < 7 and time.monotonic() < deadline:  # hold the trial until the others tried
        time.sleep(0.005)
    release.set()
    for thread in threads:
        thread.join()
    assert len(ran) == 1 and len(refused) == 7
    assert breaker.state == CLOSED


def test_closed_breaker_runs_calls_concurrently(store):
    breaker = CircuitBreaker(f"par-{store}", fail_max=3, store=store)
    barrier = threading.Barrier(4, timeout=5)

    def together() -> str:
        barrier.wait()  # deadlocks (BrokenBarrierError) if calls were serialised
        return "ok"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(breaker.call(together))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["ok"] * 4


def test_keyboard_interrupt_and_non_counting_errors_are_not_failures(clock):
    breaker = CircuitBreaker("ki", fail_max=1, reset_timeout=60, store="memory")

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    with pytest.raises(ValueError):
        breaker.call(lambda: int("x"))  # a caller's bug says nothing about the service
    assert breaker.state == CLOSED and breaker.failures == 0
    with pytest.raises(TransientError):
        breaker.call(fail)
    clock.advance(61)
    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)  # the interrupted trial is released, not failed
    assert breaker.state == HALF_OPEN
    assert breaker.call(ok) == "ok"
    counting = CircuitBreaker("all", fail_max=1, store="memory", counts=Exception)
    with pytest.raises(ValueError):
        counting.call(lambda: int("x"))
    assert counting.state == OPEN


def test_listeners_see_every_transition(clock):
    seen: list[tuple[str, str, str]] = []
    mine: list[BreakerEvent] = []
    remove = on_breaker_change.add(lambda e: seen.append((e.name, e.old_state, e.new_state)))
    breaker = CircuitBreaker("watched", fail_max=2, reset_timeout=60, store="memory")
    breaker.add_listener(mine.append)
    try:
        for _ in range(2):
            with pytest.raises(TransientError):
                breaker.call(fail)
        clock.advance(61)
        breaker.call(ok)
        breaker.trip()
        breaker.reset()
    finally:
        remove()
    assert seen == [
        ("watched", CLOSED, OPEN),
        ("watched", OPEN, HALF_OPEN),
        ("watched", HALF_OPEN, CLOSED),
        ("watched", CLOSED, OPEN),
        ("watched", OPEN, CLOSED),
    ]
    assert [(e.old_state, e.new_state) for e in mine] == [(o, n) for _, o, n in seen]
    assert mine[0].failures == 2


async def test_decorator_sync_async_and_context_manager():
    breaker = circuit_breaker("deco", fail_max=2, store="memory")
    assert get_breaker("deco") is breaker and "deco" in breakers()

    @breaker
    def sync_fail() -> None:
        raise ConnectionResetError()

    @breaker
    async def async_ok() -> str:
        return "ok"

    with pytest.raises(ConnectionResetError):
        sync_fail()
    assert await async_ok() == "ok"
    with pytest.raises(TimeoutError):
        with breaker.protect():
            raise TimeoutError()
    assert breaker.failures == 1
    with pytest.raises(TimeoutError):
        with breaker.protect():
            raise TimeoutError()
    with pytest.raises(CircuitOpenError):
        await async_ok()
    assert "open" in repr(breaker)


def test_settings_default_to_config_and_bad_values_are_refused():
    get_config_manager().set("breaker.fail_max", 2)
    breaker = CircuitBreaker("cfg", store="memory")
    assert breaker.fail_max == 2 and breaker.reset_timeout == 60.0
    for kwargs, message in [
        ({"name": ""}, "name must be a non-empty string"),
        ({"name": "x", "fail_max": 0}, "fail_max must be an int >= 1"),
        ({"name": "x", "reset_timeout": -1}, "reset_timeout must be >= 0"),
        ({"name": "x", "store": "cloud"}, "expected 'auto', 'memory', 'disk' or 'redis'"),
        ({"name": "x", "store": "redis"}, "needs a Redis URL"),
    ]:
        with pytest.raises(ValueError, match=message):
            CircuitBreaker(**kwargs)


def test_disk_state_lives_under_core_state_dir(sci_env):
    breaker = CircuitBreaker("where", fail_max=1)
    with pytest.raises(TransientError):
        breaker.call(fail)
    state_dir = sci_env["XDG_STATE_HOME"] / "sci_ext" / "breakers"
    assert state_dir.is_dir() and oct(state_dir.stat().st_mode & 0o777) == "0o700"
    assert str(state_dir) in breaker.store.description


def test_two_processes_share_a_breaker_through_the_state_dir():
    def run(mode: str) -> str:
        return run_breaker_process(mode, "shared").strip()

    assert run("look") == "closed"
    assert run("trip").startswith("refused: circuit breaker 'shared' is open after 2 consecutive failures")
    assert run("look").startswith("refused:")
    # ... and this process (same XDG_STATE_HOME) sees it too.
    assert CircuitBreaker("shared").state == OPEN


def test_a_trial_that_never_finishes_stops_blocking_after_trial_timeout(clock):
    breaker = CircuitBreaker("stale", fail_max=1, reset_timeout=1, trial_timeout=120, store="memory")
    with pytest.raises(TransientError):
        breaker.call(fail)
    clock.advance(2)
    token = breaker.before_call()  # a trial starts, and its kernel dies: no verdict ever comes
    assert token is not None
    with pytest.raises(CircuitOpenError, match="half-open: a trial call started .* ago is in progress"):
        breaker.before_call()
    clock.advance(121)
    assert breaker.call(ok) == "ok"  # the lease ran out: a new trial went through and closed it
    assert breaker.state == CLOSED
    breaker.on_success(token)  # the lost trial's late verdict changes nothing
    assert breaker.state == CLOSED
