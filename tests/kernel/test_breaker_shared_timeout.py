"""Breakers shared across kernels agree: the shared record, not each process's settings, decides.

Two real kernels (disk store) and two processes on separate "machines" (Redis store)
use the same breaker with different local ``reset_timeout``: the one that opens it
writes its reset timeout and next-trial time into the shared record, every other
process follows that record, and every refusal says what the record says.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kernel_harness import REPO

from sci_ext.core.errors import CircuitOpenError, TransientError
from sci_ext.core.resilience import HALF_OPEN, OPEN, CircuitBreaker


def _fail() -> None:
    raise TransientError("down")


_SETUP = "from sci_ext.core.resilience import CircuitBreaker\nfrom sci_ext.core.errors import TransientError, CircuitOpenError\n"


def _trip_cell(reset_timeout: float) -> str:
    return _SETUP + textwrap.dedent(
        f"""
        b = CircuitBreaker("shared-api", fail_max=2, reset_timeout={reset_timeout})
        for _ in range(2):
            try:
                b.call(lambda: (_ for _ in ()).throw(TransientError("down")))
            except TransientError:
                pass
        print(b.state)
        """
    )


def _look_cell(reset_timeout: float) -> str:
    return _SETUP + textwrap.dedent(
        f"""
        b = CircuitBreaker("shared-api", fail_max=2, reset_timeout={reset_timeout})
        try:
            b.call(lambda: None)
            print("closed")
        except CircuitOpenError as exc:
            print("refused:", exc, "| retry_after:", round(exc.retry_after, 2))
        """
    )


def _retry_after(text: str) -> float:
    match = re.search(r"retry_after: ([\d.]+)", text)
    assert match, text
    return float(match.group(1))


def test_two_kernels_with_different_reset_timeouts_follow_the_shared_record(kernel_factory):
    opener, other = kernel_factory(), kernel_factory()
    # The opener's reset timeout is 6 s; the other kernel's own setting is 600 s.
    assert opener.run(_trip_cell(6)).check().stdout.strip() == "open"
    look = other.run(_look_cell(600)).check().stdout
    assert "refused: circuit breaker 'shared-api' is open after 2 consecutive failures" in look
    waited = _retry_after(look)
    assert waited <= 6.0, look  # not "next trial in 600.0 s"
    assert "shared reset timeout is 6 s (set where it opened; this process's is 600 s)" in look
    time.sleep(waited + 0.2)
    assert other.run(_look_cell(600)).check().stdout.strip() == "closed"  # its trial went through

    # The other way round: opened with 600 s, a kernel whose own setting is 0.1 s stays out.
    assert other.run(_trip_cell(600)).check().stdout.strip() == "open"
    time.sleep(0.5)
    look = opener.run(_look_cell(0.1)).check().stdout
    assert "refused:" in look and _retry_after(look) > 590, look
    state = opener.run(_SETUP + "print(CircuitBreaker('shared-api', reset_timeout=0.1).state)").check()
    assert state.stdout.strip() == "open"


_PROCESS = textwrap.dedent(
    """
    import sys, time
    from sci_ext.core.errors import TransientError, CircuitOpenError
    from sci_ext.core.resilience import CircuitBreaker
    mode, reset_timeout = sys.argv[1], float(sys.argv[2])
    b = CircuitBreaker("remote-api", fail_max=2, reset_timeout=reset_timeout)
    print("store:", b.store.description)
    if mode == "trip":
        for _ in range(2):
            try:
                b.call(lambda: (_ for _ in ()).throw(TransientError("down")))
            except TransientError:
                pass
        print(b.state)
        sys.exit(0)
    try:
        b.call(lambda: None)
        print("closed")
    except CircuitOpenError as exc:
        print("refused:", exc, "| retry_after:", round(exc.retry_after, 2))
        time.sleep(min(exc.retry_after, 8.0) + 0.2)  # capped: the old code said 600 s
        try:
            b.call(lambda: None)
            print("then closed")
        except CircuitOpenError as again:
            print("then refused:", again)
    """
)


def _machine(mode: str, reset_timeout: float, state_home: Path, redis_url: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "XDG_STATE_HOME": str(state_home),
        "SCI_EXT_BREAKER__REDIS_URL": redis_url,
    }
    return subprocess.run(
        [sys.executable, "-c", _PROCESS, mode, str(reset_timeout)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
        timeout=60,
    ).stdout


@pytest.mark.redis
def test_two_machines_through_redis_follow_the_shared_record(redis_server, tmp_path):
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    out = _machine("trip", 6, machine_a, redis_server.url)
    assert "store: redis" in out and out.strip().endswith("open")
    out = _machine("look", 600, machine_b, redis_server.url)
    assert "refused: circuit breaker 'remote-api' is open" in out
    assert _retry_after(out) <= 6.0, out
    assert "shared reset timeout is 6 s" in out
    assert "then closed" in out  # it tried again when the shared record said, and the trial closed it

    out = _machine("trip", 600, machine_a, redis_server.url)
    time.sleep(0.3)
    out = _machine("look", 0.05, machine_b, redis_server.url)
    assert "refused:" in out and _retry_after(out) > 590, out


def test_a_half_open_refusal_tells_the_truth_about_the_trial(monkeypatch):
    """Reset timeout 3 s, trial lease 60 s: the refusal does not promise "next trial in 60.0 s"."""
    opener = CircuitBreaker("trialled", fail_max=1, reset_timeout=3, store="disk")
    elsewhere = CircuitBreaker("trialled", fail_max=1, reset_timeout=900, store="disk")
    with pytest.raises(TransientError):
        opener.call(_fail)
    assert opener.state == OPEN and elsewhere.state == OPEN
    record = opener.store.load("trialled")
    assert record is not None and record["reset_timeout"] == 3 and record["retry_at"] == record["opened_at"] + 3
    # Three seconds later (the shared record's time), both see half-open, whatever their own setting.
    from sci_ext.core.resilience import breaker as breaker_module

    real = time.time()

    class Later:
        @staticmethod
        def time() -> float:
            return real + 3.5

    monkeypatch.setattr(breaker_module, "time", Later)
    assert opener.state == HALF_OPEN and elsewhere.state == HALF_OPEN
    token = opener.before_call()  # the trial starts (lease 60 s)
    assert token is not None
    with pytest.raises(CircuitOpenError) as caught:
        elsewhere.before_call()
    message = str(caught.value)
    assert "next trial in 60" not in message
    assert "half-open: a trial call started 0.0 s ago is in progress" in message
    assert "if it fails the breaker reopens for 3 s" in message
    assert "unfinished in 60.0 s" in message
    assert caught.value.retry_after == pytest.approx(3.0)  # ask again after one reset timeout
    opener.on_failure(token, TransientError("still down"))  # the trial fails: reopened for 3 s again
    with pytest.raises(CircuitOpenError, match=r"is open after 2 consecutive failures; next trial in 3\.0 s"):
        elsewhere.before_call()
