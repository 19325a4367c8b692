"""The shared token bucket: parsing, spacing, bursts, non-blocking use, sharing across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sci_ext.core.errors import RateLimitExceeded
from sci_ext.core.resilience import RateLimiter, on_rate_limit_wait, parse_rate, rate_limiter
from sci_ext.core.resilience import retry as retry_module

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("60/minute", (60.0, 60.0)), ("5/second", (5.0, 1.0)), ("100 / hour", (100.0, 3600.0)), ("2.5/s", (2.5, 1.0))],
)
def test_parse_rate(text, expected):
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5/fortnight", "unknown unit 'fortnight'"),
        ("fast", "expected N/second, N/minute or N/hour"),
        ("0/second", "must be > 0"),
        ("-1/second", "expected N/second"),
    ],
)
def test_bad_rates_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_rate(text)


@pytest.fixture
def fake_clock(monkeypatch):
    """time.time advances only when the limiter sleeps."""
    now = [1_000_000.0]
    slept: list[float] = []

    def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(retry_module.time, "sleep", fake_sleep)
    monkeypatch.setattr("sci_ext.core.resilience.ratelimit.time.time", lambda: now[0])
    return slept


@pytest.mark.parametrize("store", ["memory", "disk"])
def test_calls_are_spaced_at_the_rate(fake_clock, store):
    limiter = RateLimiter(f"space-{store}", "10/second", store=store)
    waited = [limiter.acquire() for _ in range(5)]
    assert waited[0] == 0
    assert waited[1:] == pytest.approx([0.1] * 4)
    assert fake_clock == pytest.approx([0.1] * 4)


def test_burst_lets_that_many_through_at_once(fake_clock):
    limiter = RateLimiter("burst", "2/second", burst=3, store="memory")
    assert [limiter.acquire() for _ in range(4)] == [0, 0, 0, pytest.approx(0.5)]


def test_wait_is_announced_to_callback_and_listeners(fake_clock):
    seen = []
    remove = on_rate_limit_wait.add(lambda e: seen.append((e.name, round(e.wait, 3))))
    try:
        limiter = RateLimiter("loud", "1/second", store="memory")
        announced: list[float] = []
        limiter.acquire(on_wait=announced.append)
        limiter.acquire(on_wait=announced.append)
    finally:
        remove()
    assert announced == [pytest.approx(1.0)]
    assert seen == [("loud", 1.0)]


def test_non_blocking_and_timeout_raise_without_taking_a_token(fake_clock):
    limiter = RateLimiter("strict", "1/minute", store="memory")
    limiter.acquire()
    with pytest.raises(RateLimitExceeded, match=r"rate limit 'strict' \(1/minute\): next slot in 60.00 s"):
        limiter.acquire(block=False)
    with pytest.raises(RateLimitExceeded, match="longer than the timeout of 5"):
        limiter.acquire(timeout=5)
    assert fake_clock == []
    assert limiter.acquire() == pytest.approx(60.0)  # nothing was reserved by the refusals


async def test_decorator_and_async_acquire(fake_clock):
    @rate_limiter("deco", "4/second", store="memory")
    def call(x: int) -> int:
        return x

    assert [call(i) for i in range(3)] == [0, 1, 2]
    assert fake_clock == pytest.approx([0.25, 0.25])
    limiter = RateLimiter("async", 2, per=1.0, store="memory")

    @limiter
    async def acall() -> str:
        return "ok"

    assert await acall() == "ok"
    assert await limiter.aacquire() >= 0
    limiter.reset()
    assert limiter.acquire() == 0
    assert "RateLimiter 'async'" in repr(limiter)


def test_bad_limiter_arguments():
    with pytest.raises(ValueError, match="burst must be an int >= 1"):
        RateLimiter("x", "1/second", burst=0, store="memory")
    with pytest.raises(ValueError, match="rate and per must be > 0"):
        RateLimiter("x", 0, store="memory")
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        RateLimiter("", "1/second", store="memory")


def test_testing_mode_turns_rate_waits_off(no_waits):
    limiter = RateLimiter("fast", "1/hour", store="memory")
    started = time.monotonic()
    limiter.acquire()
    assert limiter.acquire() == pytest.approx(3600, abs=1)  # reported, but not slept
    assert time.monotonic() - started < 60


_PROCESS = textwrap.dedent(
    """
    from sci_ext.core.resilience import RateLimiter
    limiter = RateLimiter("shared-bucket", "1/hour")
    print(round(limiter.acquire(block=False), 1))
    """
)


def test_processes_share_one_bucket():
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", _PROCESS], capture_output=True, text=True, cwd=REPO)

    first = run()
    assert first.returncode == 0 and first.stdout.strip() == "0.0", first.stderr
    second = run()
    assert second.returncode != 0 and "RateLimitExceeded: rate limit 'shared-bucket' (1/hour)" in second.stderr
    with pytest.raises(RateLimitExceeded):
        RateLimiter("shared-bucket", "1/hour").acquire(block=False)
