"""retry_with_backoff on sync functions: what is retried, bounds, waits, hooks, testing switch."""

from __future__ import annotations

import inspect
import logging
import time

import pytest

from sci_ext.core import get_config_manager, resilience
from sci_ext.core.errors import CircuitOpenError, PermanentError, TransientError
from sci_ext.core.resilience import RetryEvent, RetryPolicy, is_testing, on_retry, retry_with_backoff, set_testing
from sci_ext.core.resilience import retry as retry_module


class Flaky:
    """Fails with ``errors`` in turn, then returns ``value``."""

    def __init__(self, *errors: BaseException, value: object = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.value = value

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


def test_transient_errors_are_retried_until_success(no_waits):
    flaky = Flaky(ConnectionResetError(), TimeoutError(), value=42)
    assert retry_with_backoff(max_attempts=3)(flaky)() == 42
    assert flaky.calls == 3


def test_attempts_are_bounded_and_the_original_error_propagates(no_waits):
    flaky = Flaky(*(TransientError(f"blip {i}") for i in range(5)))
    with pytest.raises(TransientError, match="blip 2") as info:
        retry_with_backoff(max_attempts=3)(flaky)()
    assert flaky.calls == 3
    assert "gave up after 3 attempts (transient)" in info.value.__notes__[0]


@pytest.mark.parametrize("error", [ValueError("bad"), PermanentError("404"), KeyError("k")])
def test_permanent_and_unknown_errors_fail_at_once(no_waits, error):
    flaky = Flaky(error)
    with pytest.raises(type(error)):
        retry_with_backoff(max_attempts=5)(flaky)()
    assert flaky.calls == 1


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3)])
def test_keyboard_interrupt_and_system_exit_are_never_retried(no_waits, error):
    flaky = Flaky(error)
    with pytest.raises(type(error)):
        retry_with_backoff(max_attempts=5, on=lambda exc: True)(flaky)()
    assert flaky.calls == 1
    flaky = Flaky(TransientError(), error)  # also not in the tenacity loop
    with pytest.raises(type(error)):
        retry_with_backoff(max_attempts=5)(flaky)()
    assert flaky.calls == 2


def test_an_open_breaker_fails_fast(no_waits):
    flaky = Flaky(CircuitOpenError("open"))
    with pytest.raises(CircuitOpenError):
        retry_with_backoff(max_attempts=5)(flaky)()
    assert flaky.calls == 1


def test_on_classes_categories_and_predicates(no_waits):
    flaky = Flaky(ValueError(), ValueError())
    assert retry_with_backoff(max_attempts=3, on=ValueError)(flaky)() == "ok"
    flaky = Flaky(ConnectionResetError())
    with pytest.raises(ConnectionResetError):
        retry_with_backoff(max_attempts=3, on=ValueError)(flaky)()  # `on` replaces the default
    flaky = Flaky(TimeoutError(), KeyError())
    assert retry_with_backoff(max_attempts=3, on=["timeout", KeyError])(flaky)() == "ok"
    flaky = Flaky(RuntimeError("again"), RuntimeError("stop"))
    with pytest.raises(RuntimeError, match="stop"):
        retry_with_backoff(max_attempts=5, on=lambda e: "again" in str(e))(flaky)()
    assert flaky.calls == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be an int >= 1"),
        ({"initial_wait": -1}, "initial_wait must be >= 0"),
        ({"multiplier": 0.5}, "multiplier must be >= 1"),
        ({"on": "sometimes"}, "unknown error category 'sometimes'"),
    ],
)
def test_bad_arguments_fail_at_decoration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        retry_with_backoff(**kwargs)
    with pytest.raises(TypeError, match="expected exception classes"):
        retry_with_backoff(on=[42])  # type: ignore[list-item]


def test_signature_docstring_and_bare_use_are_kept():
    def fetch(url: str, *, timeout: float = 1.0) -> str:
        """Fetch a URL."""
        return url

    decorated = retry_with_backoff(fetch)
    assert decorated("x") == "x"
    assert decorated.__doc__ == "Fetch a URL."
    assert decorated.__name__ == "fetch"
    assert inspect.signature(decorated) == inspect.signature(fetch)
    assert "url" in str(inspect.signature(decorated))


def test_waits_grow_exponentially_with_jitter_and_are_capped(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(retry_module.time, "sleep", slept.append)
    flaky = Flaky(*(TransientError() for _ in range(5)))
    decorated = retry_with_backoff(max_attempts=6, initial_wait=0.1, multiplier=2, jitter=0.05, max_wait=0.5)(flaky)
    assert decorated() == "ok"
    assert len(slept) == 5
    for got, base in zip(slept, [0.1, 0.2, 0.4, 0.5, 0.5]):
        assert base <= got <= min(base + 0.05, 0.5) + 1e-9, slept


def test_retry_after_is_honoured_and_capped(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(retry_module.time, "sleep", slept.append)
    limited = TransientError("429")
    limited.retry_after = 7  # type: ignore[attr-defined]
    huge = TransientError("429")
    huge.retry_after = 10_000  # type: ignore[attr-defined]
    flaky = Flaky(limited, huge)
    assert retry_with_backoff(max_attempts=3, initial_wait=0, jitter=0, max_retry_after=60)(flaky)() == "ok"
    assert slept == [7.0, 60.0]


def test_total_time_is_bounded(monkeypatch):
    slept: list[float] = []
    real_monotonic = time.monotonic

    def fake_sleep(seconds: float) -> None:  # a clock that advances by the slept time
        slept.append(seconds)

    monkeypatch.setattr(retry_module.time, "sleep", fake_sleep)
    monkeypatch.setattr(retry_module.time, "monotonic", lambda: real_monotonic() + sum(slept))
    flaky = Flaky(*(TransientError() for _ in range(10)))
    with pytest.raises(TransientError):
        retry_with_backoff(max_attempts=10, initial_wait=1, multiplier=2, jitter=0, max_wait=100, timeout=5)(flaky)()
    # 1 + 2 fit in 5 s; the next wait (4) would end past the budget, so it stops.
    assert slept == [1.0, 2.0]
    assert flaky.calls == 3


def test_defaults_come_from_config_at_failure_time(no_waits):
    flaky = Flaky(*(TransientError() for _ in range(10)))
    decorated = retry_with_backoff()(flaky)
    get_config_manager().set("retry.max_attempts", 5)
    with pytest.raises(TransientError):
        decorated()
    assert flaky.calls == 5


def test_hooks_and_log_line_per_retry(no_waits, caplog):
    events: list[RetryEvent] = []
    mine: list[RetryEvent] = []
    remove = on_retry.add(events.append)
    try:
        flaky = Flaky(ConnectionResetError("reset"), TimeoutError("slow"))
        with caplog.at_level(logging.WARNING, logger="sci_ext.retry"):
            retry_with_backoff(max_attempts=3, name="fetch", on_retry=mine.append)(flaky)()
    finally:
        remove()
    assert [(e.name, e.attempt, e.max_attempts, e.error_type, e.category) for e in events] == [
        ("fetch", 1, 3, "ConnectionResetError", "transient"),
        ("fetch", 2, 3, "TimeoutError", "timeout"),
    ]
    assert mine == events
    assert len([r for r in caplog.records if r.name == "sci_ext.retry"]) == 2
    assert "attempt 1/3 failed with ConnectionResetError" in caplog.records[0].getMessage()


def test_a_failing_listener_does_not_break_the_call(no_waits):
    def broken(event: RetryEvent) -> None:
        raise RuntimeError("listener bug")

    remove = on_retry.add(broken)
    try:
        assert retry_with_backoff(max_attempts=2)(Flaky(TimeoutError()))() == "ok"
    finally:
        remove()


def test_testing_switch_caps_attempts_and_turns_waits_off(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(retry_module.time, "sleep", slept.append)
    assert not is_testing()
    with resilience.testing(attempts=1):
        assert is_testing()
        flaky = Flaky(TransientError(), TransientError())
        with pytest.raises(TransientError):
            retry_with_backoff(max_attempts=5, initial_wait=10)(flaky)()
        assert flaky.calls == 1
        with resilience.testing(attempts=None):  # nests and restores
            flaky = Flaky(TransientError(), TransientError())
            assert retry_with_backoff(max_attempts=5, initial_wait=10)(flaky)() == "ok"
        assert is_testing()
    assert not is_testing()
    assert slept == []
    set_testing(True, attempts=2)
    try:
        flaky = Flaky(TransientError(), TransientError())
        with pytest.raises(TransientError):
            retry_with_backoff(max_attempts=5)(flaky)()
        assert flaky.calls == 2
    finally:
        set_testing(False)
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        set_testing(True, attempts=0)
    assert not is_testing()


def test_fresh_state_per_call_across_threads(no_waits):
    import threading

    policy = RetryPolicy(3)
    results: list[object] = []

    def worker() -> None:
        flaky = Flaky(TimeoutError(), TimeoutError())
        results.append(policy.call(flaky))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["ok"] * 8


def test_policy_call_passes_arguments(no_waits):
    calls: list[tuple[object, ...]] = []

    def add(a: int, b: int = 0) -> int:
        calls.append((a, b))
        if len(calls) == 1:
            raise ConnectionAbortedError()
        return a + b

    assert RetryPolicy(2).call(add, 2, b=3) == 5
    assert calls == [(2, 3), (2, 3)]
