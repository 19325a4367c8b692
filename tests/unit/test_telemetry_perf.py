"""performance_monitor (sync, async, bare and configured) and every core decorator stacked on one function."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import typing

import pytest
from telemetry_fixtures import sample


def test_bare_decorator_times_calls_and_keeps_the_signature(telemetry):
    from sci_ext.core import performance_monitor

    @performance_monitor
    def scale(x: int, factor: float = 2.0) -> float:
        """Multiply."""
        return x * factor

    assert scale(3) == 6.0
    assert scale(1, factor=0.5) == 0.5
    assert scale.__name__ == "scale" and scale.__doc__ == "Multiply."
    assert str(inspect.signature(scale)) == "(x: 'int', factor: 'float' = 2.0) -> 'float'"  # postponed annotations
    assert typing.get_type_hints(scale) == {"x": int, "factor": float, "return": float}
    label = f"{__name__}.test_bare_decorator_times_calls_and_keeps_the_signature.<locals>.scale"
    assert sample("sci_function_duration_seconds_count", function=label) == 2


def test_named_async_monitor_counts_errors_and_logs_one_line(telemetry):
    from sci_ext.core import performance_monitor
    from sci_ext.core.telemetry import log_path

    @performance_monitor(name="fetch-page")
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        if n < 0:
            raise TimeoutError("slow upstream")
        return n

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(4)) == 4
    before = sample("sci_errors_total", category="timeout")
    with pytest.raises(TimeoutError):
        asyncio.run(fetch(-1))
    assert sample("sci_function_duration_seconds_count", function="fetch-page") == 2
    assert sample("sci_errors_total", category="timeout") == before + 1
    lines = [json.loads(x) for x in log_path().read_text().splitlines()]
    failures = [x for x in lines if x["logger"] == "sci_ext.perf"]
    assert len(failures) == 1  # success lines are DEBUG, below the default INFO
    assert failures[0]["function"] == "fetch-page" and failures[0]["category"] == "timeout"
    assert failures[0]["level"] == "ERROR"


def test_success_line_at_debug_level(telemetry):
    from sci_ext.core import performance_monitor

    logger = logging.getLogger("sci_ext.perf")
    got = []
    handler = logging.Handler()
    handler.emit = got.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        performance_monitor(name="dbg")(lambda: None)()
    finally:
        logger.setLevel(old)
        logger.removeHandler(handler)
    assert [r.getMessage().split(" took ")[0] for r in got] == ["dbg"]
    assert got[0].duration_seconds >= 0  # type: ignore[attr-defined]


def test_interrupt_is_timed_but_not_an_error(telemetry):
    from sci_ext.core import performance_monitor

    @performance_monitor(name="interrupted")
    def stop():
        raise KeyboardInterrupt

    before = sum(sample("sci_errors_total", category=c) for c in ("unknown", "permanent", "transient"))
    with pytest.raises(KeyboardInterrupt):
        stop()
    assert sample("sci_function_duration_seconds_count", function="interrupted") == 1
    assert sum(sample("sci_errors_total", category=c) for c in ("unknown", "permanent", "transient")) == before


def test_bad_use_is_a_clear_error():
    from sci_ext.core import performance_monitor

    with pytest.raises(TypeError, match="performance_monitor: expected a function, got int"):
        performance_monitor(3)  # type: ignore[call-overload]


# ------------------------------------------------- every core decorator at once
def test_spec_snippet_runs_unchanged_sync(telemetry, fast_vault, no_waits):
    # The usage example of the library: imports unsorted on purpose, as a user writes them.
    from sci_ext.core import get_config_manager, get_rag_config, get_security_manager  # noqa: I001
    from sci_ext.core import handle_errors, retry_with_backoff, cache_result, performance_monitor

    rag_config = get_rag_config()
    api_key = get_security_manager().generate_api_key("test")

    calls = []

    @handle_errors()
    @retry_with_backoff(max_attempts=3)
    def critical_operation():
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("blip")
        return "done"

    computed = []

    @cache_result(ttl_seconds=300)
    @performance_monitor
    def expensive_operation(param):
        computed.append(param)
        return param * 10

    assert get_config_manager() is not None and rag_config.top_k > 0 and api_key.startswith("sci_")
    assert critical_operation() == "done" and len(calls) == 2
    assert expensive_operation(4) == 40
    assert expensive_operation(4) == 40  # a cache hit: the monitored function does not run again
    assert computed == [4]
    label = f"{__name__}.test_spec_snippet_runs_unchanged_sync.<locals>.expensive_operation"
    assert sample("sci_function_duration_seconds_count", function=label) == 1
    assert sample("sci_cache_requests_total", layer="memory", result="hit") >= 1


async def test_spec_snippet_runs_unchanged_async(telemetry, no_waits):
    from sci_ext.core import handle_errors, retry_with_backoff, cache_result, performance_monitor  # noqa: I001

    calls = []

    @handle_errors()
    @retry_with_backoff(max_attempts=3)
    async def critical_operation():
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("blip")
        return "done"

    computed = []

    @cache_result(ttl_seconds=300)
    @performance_monitor
    async def expensive_operation(param):
        computed.append(param)
        await asyncio.sleep(0)
        return param * 10

    assert await critical_operation() == "done" and len(calls) == 2
    assert await expensive_operation(5) == 50
    assert await expensive_operation(5) == 50
    assert computed == [5]
    label = f"{__name__}.test_spec_snippet_runs_unchanged_async.<locals>.expensive_operation"
    assert sample("sci_function_duration_seconds_count", function=label) == 1
