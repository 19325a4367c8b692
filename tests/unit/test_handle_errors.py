"""handle_errors: classify, record, log one structured line, fall back or re-raise."""

from __future__ import annotations

import inspect
import logging

import pytest

from sci_ext.core import handle_errors, retry_with_backoff
from sci_ext.core.resilience import clear_recent_errors, on_error, recent_errors, set_correlation_id_provider


@pytest.fixture(autouse=True)
def _clean():
    clear_recent_errors()
    yield
    clear_recent_errors()
    set_correlation_id_provider(None)


def test_fallback_value_and_record(caplog):
    @handle_errors(fallback=[])
    def search(query: str) -> list[str]:
        raise ConnectionResetError("peer reset")

    with caplog.at_level(logging.ERROR, logger="sci_ext.errors"):
        assert search("q") == []
    [record] = recent_errors()
    assert (record.where, record.category, record.error_type, record.message) == (
        "test_fallback_value_and_record.<locals>.search",
        "transient",
        "ConnectionResetError",
        "peer reset",
    )
    [line] = [r for r in caplog.records if r.name == "sci_ext.errors"]
    assert line.getMessage().endswith("failed: ConnectionResetError: peer reset [transient]")
    assert line.category == "transient" and line.error_type == "ConnectionResetError"


def test_callable_fallback_gets_the_error_and_listeners_and_correlation_id():
    seen = []
    remove = on_error.add(seen.append)
    set_correlation_id_provider(lambda: "cell-7")
    try:

        @handle_errors(fallback=lambda exc: f"degraded ({type(exc).__name__})", name="ask-llm")
        def ask() -> str:
            raise PermissionError("no")

        assert ask() == "degraded (PermissionError)"
    finally:
        remove()
    assert seen[0].where == "ask-llm" and seen[0].correlation_id == "cell-7"


def test_reraise_and_on_filter():
    @handle_errors(reraise=True)
    def strict() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError):
        strict()
    assert recent_errors()[-1].category == "unknown"

    @handle_errors(fallback=0, on=ConnectionError)
    def narrow() -> int:
        raise KeyError("other")

    with pytest.raises(KeyError):
        narrow()  # not in `on`: untouched and not recorded
    assert len(recent_errors()) == 1


def test_keyboard_interrupt_is_never_handled():
    @handle_errors(fallback="nope")
    def stop() -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stop()
    assert recent_errors() == []
    with pytest.raises(ValueError, match="never KeyboardInterrupt"):
        handle_errors(on=KeyboardInterrupt)
    with pytest.raises(TypeError, match="expects exception classes"):
        handle_errors(on=("x",))  # type: ignore[arg-type]


def test_the_spec_snippet_composes(no_waits):
    calls = 0

    @handle_errors()
    @retry_with_backoff(max_attempts=3)
    def critical_operation() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TimeoutError()
        return "done"

    assert critical_operation() == "done"
    assert inspect.signature(critical_operation) == inspect.signature(critical_operation.__wrapped__)
    calls = -10
    assert critical_operation() is None  # gave up after 3 attempts -> fallback None
    assert recent_errors(1)[0].category == "timeout"
