"""The reliability figure of issue 4 (also reported in the issue note).

10,000 calls to a function that fails transiently with probability 0.3, with
``max_attempts=6`` and waits off: at least 99.9 % recover (the expected failure
share is 0.3**6 = 0.073 %).  The seed is fixed so the test is deterministic; at
10,000 calls the 0.073 % tail is only ~1 standard deviation below the 0.1 % line,
so the structural check matters as much: no call gives up before its 6th attempt,
i.e. every loss is the unavoidable 0.3**6 tail.  Permanent errors are never retried.  A breaker opens
after exactly ``fail_max`` failures and lets exactly one trial through when half-open.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from sci_ext.core.errors import CircuitOpenError, PermanentError, TransientError
from sci_ext.core.resilience import OPEN, CircuitBreaker, RetryEvent, on_retry, retry_with_backoff

CALLS = 10_000
FAILURE_PROBABILITY = 0.3


def test_recovered_share_of_flaky_calls(no_waits, capsys):
    rng = random.Random(3)
    attempts = 0
    gave_up_after: list[int] = []

    @retry_with_backoff(max_attempts=6)
    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if rng.random() < FAILURE_PROBABILITY:
            raise TransientError("blip")
        return "ok"

    recovered = 0
    for _ in range(CALLS):
        before = attempts
        try:
            flaky()
            recovered += 1
        except TransientError:
            gave_up_after.append(attempts - before)
    share = recovered / CALLS
    with capsys.disabled():
        print(f"\nreliability: {recovered}/{CALLS} recovered = {share:.4%}; {attempts} attempts in all")
    assert share >= 0.999
    assert set(gave_up_after) <= {6}
    assert attempts < CALLS * 6  # bounded: not every call used every attempt


def test_permanent_errors_are_not_retried_at_all(no_waits):
    retries: list[RetryEvent] = []
    remove = on_retry.add(retries.append)
    calls = 0

    @retry_with_backoff(max_attempts=6)
    def bad_request() -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("400 bad request")

    try:
        for _ in range(1000):
            with pytest.raises(PermanentError):
                bad_request()
    finally:
        remove()
    assert calls == 1000 and retries == []


@pytest.mark.parametrize("fail_max", [1, 3, 7])
def test_breaker_opens_after_exactly_fail_max_and_admits_one_trial(fail_max, monkeypatch):
    from sci_ext.core.resilience import breaker as breaker_module

    now = [1_800_000_000.0]
    monkeypatch.setattr(breaker_module, "time", type("Clock", (), {"time": staticmethod(lambda: now[0])}))
    breaker = CircuitBreaker(f"exact-{fail_max}", fail_max=fail_max, reset_timeout=60, store="memory")
    for n in range(1, fail_max + 1):
        assert breaker.state != OPEN, f"opened after {n - 1} failures"
        with pytest.raises(TransientError):
            breaker.call(lambda: (_ for _ in ()).throw(TransientError("down")))
    assert breaker.state == OPEN
    now[0] += 61  # the reset timeout passes (a fake clock: no sleeping, no flakiness)
    admitted = []
    gate = threading.Event()

    def trial() -> None:
        admitted.append(1)
        gate.wait(5)

    refused = []

    def caller() -> None:
        try:
            breaker.call(trial)
        except CircuitOpenError:
            refused.append(1)

    threads = [threading.Thread(target=caller) for _ in range(10)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(refused) < 9 and time.monotonic() < deadline:  # hold the trial until the others tried
        time.sleep(0.005)
    gate.set()
    for thread in threads:
        thread.join()
    assert len(admitted) == 1 and len(refused) == 9
