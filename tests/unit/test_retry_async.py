"""retry_with_backoff and handle_errors on coroutine functions."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from sci_ext.core.errors import TransientError
from sci_ext.core.resilience import RetryPolicy, handle_errors, retry_with_backoff
from sci_ext.core.resilience import retry as retry_module


async def test_async_transient_errors_are_retried(no_waits):
    calls = 0

    @retry_with_backoff(max_attempts=4)
    async def fetch(x: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls < 3:
            raise ConnectionResetError("reset")
        return x * 2

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch(21) == 42
    assert calls == 3


async def test_async_permanent_errors_fail_at_once(no_waits):
    calls = 0

    @retry_with_backoff(max_attempts=4)
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bad request")

    with pytest.raises(ValueError):
        await fetch()
    assert calls == 1


async def test_async_gives_up_after_max_attempts_and_waits_with_asyncio(monkeypatch):
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(retry_module.asyncio, "sleep", fake_sleep)
    calls = 0

    @retry_with_backoff(max_attempts=3, initial_wait=0.25, jitter=0, multiplier=2)
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        raise TransientError(f"blip {calls}")

    with pytest.raises(TransientError, match="blip 3"):
        await fetch()
    assert slept == [0.25, 0.5]


async def test_each_async_call_has_its_own_retry_state(no_waits):
    # tenacity #93: concurrent calls of one decorated coroutine must not share state.
    failures: dict[int, int] = {}

    @retry_with_backoff(max_attempts=3)
    async def fetch(i: int) -> int:
        failures[i] = failures.get(i, 0) + 1
        await asyncio.sleep(0.001)
        if failures[i] < 3:
            raise TimeoutError()
        return i

    assert await asyncio.gather(*(fetch(i) for i in range(20))) == list(range(20))
    assert set(failures.values()) == {3}


async def test_policy_acall_and_cancellation_is_not_retried(no_waits):
    async def slow() -> None:
        await asyncio.sleep(10)

    task = asyncio.ensure_future(RetryPolicy(5).acall(slow))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_handle_errors_on_async_functions():
    @handle_errors(fallback=lambda exc: f"fallback after {type(exc).__name__}")
    async def ask() -> str:
        raise ConnectionRefusedError()

    assert await ask() == "fallback after ConnectionRefusedError"

    @handle_errors(reraise=True)
    async def strict() -> str:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await strict()
