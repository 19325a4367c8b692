"""LLM accounting in this process with the real SDKs: edge paths of the patch, the CLI, annotators."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from lazy_module import LazyModule

from sci_ext.cli import main
from sci_ext.core.config import get_config_manager
from sci_ext.core.llm import get_llm_usage, history, instrument, uninstrument, usage
from sci_ext.core.llm.patch import _endpoint, _status
from sci_ext.testing import FakeLLMServer

anthropic = LazyModule("anthropic")  # imported by the first test that uses it
openai = LazyModule("openai")

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    usage.BOOK.reset()
    instrument()
    with FakeLLMServer() as srv:
        yield srv
    uninstrument()
    usage.BOOK.reset()


def _rows() -> dict[str, Any]:
    return {r["model"]: r for r in get_llm_usage()["models"]}


def test_other_requests_pass_untouched_and_streams_closed_early(server: FakeLLMServer) -> None:
    oc = openai.OpenAI(base_url=server.openai_url, api_key="sk", max_retries=0)
    with pytest.raises(openai.APIStatusError):
        oc.files.retrieve("file-1")  # a GET, not an LLM call: not accounted
    stream = oc.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.content == "Hello"
    stream.close()  # closed early, and no usage chunk without include_usage
    del stream, first  # an abandoned stream is recorded when it is collected (at once in CPython)
    import gc

    gc.collect()
    raw = oc.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
    assert raw.parse().usage.prompt_tokens == server.usage["input"]
    rows = _rows()
    assert rows["gpt-4o-mini"]["calls"] == 2  # the stream and the raw call; not the GET
    assert rows["gpt-4o-mini"]["unknown_cost_calls"] == 2  # neither reported usage to sci_ext


def test_async_responses_stream_and_anthropic_events(server: FakeLLMServer) -> None:
    async def go() -> None:
        oc = openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk", max_retries=0)
        stream = await oc.responses.create(model="o3", input="hi", stream=True)
        async for _ in stream:
            pass
        ac = anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="sk", max_retries=0)
        raw = await ac.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MSGS, stream=True)
        async for _ in raw:
            pass
        server.fail(500)
        with pytest.raises(openai.InternalServerError):
            await oc.embeddings.create(model="text-embedding-3-small", input="x")

    asyncio.run(go())
    rows = _rows()
    assert rows["o3"]["input"] == server.usage["input"] and rows["o3"]["reasoning"] == server.usage["reasoning"]
    assert rows["claude-haiku-4-5"]["cache_write"] == server.usage["cache_write"]
    assert rows["text-embedding-3-small"]["errors"] == 1


def test_status_and_endpoint_classification() -> None:
    class Opts:
        def __init__(self, url: str, method: str = "post") -> None:
            self.url, self.method = url, method

    assert _endpoint(Opts("/v1/messages?beta=true")) == "messages"
    assert _endpoint(Opts("/chat/completions")) == "chat.completions"
    assert _endpoint(Opts("/responses", "get")) is None
    assert _endpoint(Opts("/files")) is None

    class Err(Exception):
        def __init__(self, code: int) -> None:
            self.status_code = code

    assert [_status(Err(c)) for c in (429, 503, 400)] == ["rate_limited", "server_error", "client_error"]
    assert _status(TimeoutError()) == "timeout" and _status(ConnectionError()) == "connection_error"
    assert _status(KeyboardInterrupt()) == "cancelled" and _status(ValueError()) == "error"


def test_cli_llm_text_json_and_budget_reset(server: FakeLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["llm"]) == 0
    assert "no LLM calls recorded" in capsys.readouterr().out
    get_config_manager().set("llm.budgets", "team=0.001")
    ac = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk", max_retries=0)
    ac.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MSGS)
    with pytest.raises(Exception, match="'team' is spent"):
        ac.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MSGS)
    assert history.flush()
    assert main(["llm", "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert "claude-haiku-4-5" in out and "budget team: $0.002545 of $0.001" in out
    assert main(["llm", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"]["calls"] == 2 and data["total"]["blocked"] == 1
    assert main(["llm", "--reset-budget", "team"]) == 0
    ac.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MSGS)  # allowed again
    assert main(["llm", "--reset-budget", "nope"]) == 2
    assert main(["llm", "--since", "later"]) == 2
    assert "no such budget" in capsys.readouterr().err


def test_a_failing_annotator_never_breaks_the_cache() -> None:
    from sci_ext.core.cache import annotate

    class Broken:
        def begin(self) -> Any:
            raise RuntimeError("begin")

        def end(self, handle: Any) -> Any:
            raise RuntimeError("end")

    class Fine:
        def begin(self) -> Any:
            return 1

        def end(self, handle: Any) -> Any:
            raise RuntimeError("end")

    remove = [annotate.register("broken", Broken()), annotate.register("fine", Fine())]
    try:
        assert annotate.end(annotate.begin()) == {}
    finally:
        for r in remove:
            r()
    seen: list[Any] = []
    off = annotate.on_annotated_hit.add(seen.append)
    annotate.hit("cell", "x", None)
    annotate.hit("cell", "x", {"llm": {"calls": 1}})
    off()
    assert len(seen) == 1 and seen[0].annotations == {"llm": {"calls": 1}}
