"""Retry bounds under the caller's own loops, with retry loops written the way AI-Scientist-v2 writes them.

The decorators below reproduce AI-Scientist-v2's call patterns with the same libraries (its code is
not copied): ``get_response_from_llm``'s unbounded ``@backoff.on_exception(backoff.expo, ...)`` on
429/500/timeouts over a client with the SDK's own 2 retries, and the tree-search backend's
``backoff_create``: ``@backoff.on_predicate(backoff.expo)`` around a ``max_retries=0`` Anthropic
client that retries every ``APIStatusError`` (400 and 401 too).  The fake server answers 429 (or
400) forever; without sci_ext's bounds each of these loops would never end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import backoff
import pytest
from lazy_module import LazyModule

from sci_ext.core.config import get_config_manager
from sci_ext.core.errors import CircuitOpenError, SciExtError
from sci_ext.core.llm import attempts, get_llm_usage, instrument, uninstrument, usage
from sci_ext.core.llm.attempts import RetryBoundReached
from sci_ext.testing import FakeLLMServer

anthropic = LazyModule("anthropic")  # imported by the first test that uses it
openai = LazyModule("openai")

MSGS = [{"role": "user", "content": "hi"}]


def retryable() -> tuple[type[Exception], ...]:
    """The errors AI-Scientist's get_response_from_llm retries."""
    return (openai.RateLimitError, openai.APITimeoutError, openai.InternalServerError, anthropic.RateLimitError)


def anthropic_errors() -> tuple[type[Exception], ...]:
    """The errors the tree-search backend's backoff_create retries."""
    return (
        anthropic.RateLimitError,
        anthropic.APIConnectionError,
        anthropic.APITimeoutError,
        anthropic.InternalServerError,
        anthropic.APIStatusError,
    )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    from sci_ext.core.llm import hints

    monkeypatch.setattr(hints, "in_kernel", lambda: False)  # messages for a script, whatever ran before
    retryable()  # imports both SDKs here, not inside a test's timed window
    usage.BOOK.reset()
    attempts.reset()
    instrument()
    manager = get_config_manager()
    with FakeLLMServer() as srv:
        yield srv
    manager.set_many({"llm.max_attempts": 20, "llm.max_retry_seconds": 600.0, "llm.max_failed_attempts": 500,
                      "llm.breaker": []})  # fmt: skip
    uninstrument()
    usage.BOOK.reset()
    attempts.reset()


def get_response(client: openai.OpenAI, model: str) -> str:
    """AI-Scientist's get_response_from_llm shape: an unbounded backoff over the SDK's own retries."""

    @backoff.on_exception(backoff.expo, retryable())
    def call() -> str:
        reply = client.chat.completions.create(model=model, messages=MSGS)
        return str(reply.choices[0].message.content)

    return call()


def backoff_create(create_fn: Callable[..., Any], retry_exceptions: tuple[type[Exception], ...], **kw: Any) -> Any:
    """The tree-search backend's shape: retry on a falsy result, every listed exception made falsy.

    ``factor`` is smaller than the original 1.5 so the test takes seconds, not minutes: the bound
    acts on attempts, not on how long the caller sleeps between them.
    """

    @backoff.on_predicate(wait_gen=backoff.expo, max_value=60, factor=0.05)
    def attempt() -> Any:
        try:
            return create_fn(**kw)
        except retry_exceptions:
            return False

    return attempt()


def test_429_forever_is_stopped_within_max_retry_seconds(server: FakeLLMServer) -> None:
    get_config_manager().set_many({"llm.max_retry_seconds": 2.0, "llm.max_attempts": None})
    server.fail_always = 429
    client = openai.OpenAI(base_url=server.openai_url, api_key="sk")  # the SDK's default 2 retries
    t0 = time.monotonic()
    with pytest.raises(RetryBoundReached) as info:
        get_response(client, "gpt-4o-mini")
    elapsed = time.monotonic() - t0
    assert elapsed <= 2.0 + 1.0, elapsed
    sent = len(server.requests)
    assert sent >= 3 and all(r["status"] == 429 for r in server.requests)
    error = info.value
    assert isinstance(error, SciExtError) and not isinstance(error, openai.OpenAIError)
    assert error.bound == "llm.max_retry_seconds" and error.attempts == sent
    assert f"{sent} failed attempts" in str(error) and f"{sent} rate-limited" in str(error)
    assert "SCI_EXT_LLM__MAX_RETRY_SECONDS=4" in str(error)  # how to change it, said for a script
    total = get_llm_usage()["total"]
    assert total["attempts"] == sent and total["rate_limited"] == sent and total["refused"] == 1


def test_on_predicate_loop_retrying_400_stopped_at_max_attempts(server: FakeLLMServer) -> None:
    get_config_manager().set("llm.max_attempts", 4)
    server.fail_always = 400  # a bad request: the tree-search loop retries it (APIStatusError) forever
    client = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk", max_retries=0)
    with pytest.raises(RetryBoundReached, match=r"llm.max_attempts = 4.*4 failed attempts") as info:
        backoff_create(client.messages.create, anthropic_errors(), model="claude-haiku-4-5", max_tokens=5,
                       messages=MSGS)  # fmt: skip
    assert len(server.requests) == 4 and info.value.attempts == 4
    row = get_llm_usage()["models"][0]
    assert row["attempts"] == 4 and row["calls"] == 4 and row["refused"] == 1


def test_calls_within_the_bounds_are_unchanged(server: FakeLLMServer) -> None:
    get_config_manager().set("llm.max_attempts", 3)
    client = openai.OpenAI(base_url=server.openai_url, api_key="sk")
    for _ in range(3):  # each call fails twice and succeeds: streaks end with the success
        server.fail(429, 500)
        assert get_response(client, "gpt-4o-mini") == "Hello from the fake server."
    row = get_llm_usage()["models"][0]
    assert (row["calls"], row["errors"], row["attempts"], row["rate_limited"], row["server_errors"]) == (3, 0, 9, 3, 3)


def test_anthropic_rate_limits_in_the_openai_style_decorator(server: FakeLLMServer) -> None:
    get_config_manager().set("llm.max_attempts", 5)
    server.fail_always = 429
    client = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk")

    @backoff.on_exception(backoff.expo, retryable(), factor=0.01)
    def claude() -> Any:
        return client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MSGS)

    with pytest.raises(RetryBoundReached, match="llm.max_attempts"):
        claude()
    assert len(server.requests) == 5


def test_a_loop_catching_everything_is_bounded_per_run(server: FakeLLMServer) -> None:
    get_config_manager().set_many({"llm.max_attempts": 2, "llm.max_failed_attempts": 6})
    server.fail_always = 500
    client = openai.OpenAI(base_url=server.openai_url, api_key="sk", max_retries=0)
    bounds = []
    for _ in range(10):
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        except RetryBoundReached as exc:
            bounds.append(exc.bound)
        except openai.InternalServerError:
            pass
    assert len(server.requests) == 6  # every further attempt of this run is refused
    assert bounds[-1] == "llm.max_failed_attempts" and "llm.max_attempts" in bounds


def test_an_open_breaker_refuses_sdk_calls_by_name(server: FakeLLMServer) -> None:
    from sci_ext.core.resilience.breaker import circuit_breaker

    breaker = circuit_breaker("llm-test-openai", fail_max=2, reset_timeout=60, store="memory")
    get_config_manager().set("llm.breaker", ["openai=llm-test-openai"])
    client = openai.OpenAI(base_url=server.openai_url, api_key="sk", max_retries=0)
    server.fail_always = 503
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert breaker.state == "open"
    server.fail_always = 0
    with pytest.raises(CircuitOpenError):  # not an SDK error: backoff typed on them lets it through
        get_response(client, "gpt-4o-mini")
    assert len(server.requests) == 2
    anthropic_client = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk", max_retries=0)
    anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MSGS)  # other provider
    statuses = {r["model"]: r for r in get_llm_usage()["models"]}
    assert statuses["gpt-4o-mini"]["refused"] == 1 and statuses["claude-haiku-4-5"]["errors"] == 0
    breaker.reset()


def test_bad_breaker_entries_are_one_clear_error() -> None:
    from sci_ext.core.errors import ConfigError

    with pytest.raises(ConfigError, match="llm.breaker"):
        get_config_manager().set("llm.breaker", ["openai="])


def test_async_clients_are_bounded_too(server: FakeLLMServer) -> None:
    import asyncio

    get_config_manager().set("llm.max_attempts", 3)
    server.fail_always = 503
    client = openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk")

    @backoff.on_exception(backoff.expo, retryable(), factor=0.01)
    async def call() -> Any:
        return await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)

    with pytest.raises(RetryBoundReached, match="3 server errors"):
        asyncio.run(call())
    assert len(server.requests) == 3
    assert get_llm_usage()["total"]["server_errors"] == 3
