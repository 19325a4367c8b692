"""Every provider priced: Bedrock, Vertex and Azure clients (and OpenAI-compatible URLs) billed where they bill.

Real SDK clients against the fake server; the price table (genai-prices) is the oracle.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from lazy_module import LazyModule

from sci_ext.core.config import get_config_manager
from sci_ext.core.llm import attempts, budgets, get_llm_usage, instrument, settings, uninstrument, usage
from sci_ext.core.llm.providers import billing_provider, provider_for_url
from sci_ext.testing import FakeLLMServer

anthropic = LazyModule("anthropic")  # imported by the first test that uses it
openai = LazyModule("openai")

MSGS = [{"role": "user", "content": "hi"}]
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20241022-v2:0"  # AI-Scientist-v2's tree-search default


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    usage.BOOK.reset()
    attempts.reset()
    instrument()
    with FakeLLMServer() as srv:
        # AnthropicBedrock() as AI-Scientist makes it: credentials and region from the environment (SigV4 signed)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        monkeypatch.setenv("ANTHROPIC_BEDROCK_BASE_URL", srv.bedrock_url)
        yield srv
    uninstrument()
    usage.BOOK.reset()


def _expected(provider: str, model: str, u: dict[str, int]) -> float:
    from genai_prices import Usage, calc_price

    price = calc_price(
        Usage(input_tokens=u["input"], cache_read_tokens=u["cached_input"], cache_write_tokens=u["cache_write"],
              output_tokens=u["output"]),
        model, provider_id=provider,
    )  # fmt: skip
    return float(price.total_price)


def _only_row() -> dict[str, Any]:
    rows = get_llm_usage()["models"]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("mode", ["plain", "stream", "async stream"])
def test_bedrock_calls_are_billed_by_aws_and_priced(server: FakeLLMServer, mode: str) -> None:
    if mode == "plain":
        reply = anthropic.AnthropicBedrock().messages.create(model=BEDROCK_MODEL, max_tokens=5, messages=MSGS)
        assert reply.usage.output_tokens == server.usage["output"]
    elif mode == "stream":  # AWS event-stream frames, decoded by the SDK (botocore)
        events = list(anthropic.AnthropicBedrock().messages.create(model=BEDROCK_MODEL, max_tokens=5, messages=MSGS,
                                                                   stream=True))  # fmt: skip
        assert events[-1].type == "message_stop"
    else:
        import asyncio

        async def go() -> None:
            client = anthropic.AsyncAnthropicBedrock()
            stream = await client.messages.create(model=BEDROCK_MODEL, max_tokens=5, messages=MSGS, stream=True)
            async for _ in stream:
                pass

        asyncio.run(go())
    assert server.requests[-1]["stream"] == (mode != "plain")
    row = _only_row()
    assert row["provider"] == "aws" and row["model"] == BEDROCK_MODEL
    assert row["input"] == server.usage["input"] and row["cache_write"] == server.usage["cache_write"]
    assert row["cost_usd"] == pytest.approx(_expected("aws", BEDROCK_MODEL, server.usage), rel=1e-12)
    assert row["cost_usd"] > 0


def test_vertex_and_azure_are_billed_by_google_and_azure(server: FakeLLMServer) -> None:
    vertex = anthropic.AnthropicVertex(
        region="us-east5", project_id="p", access_token="tok", base_url=f"{server.anthropic_url}/v1"
    )
    vertex.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MSGS)
    azure = openai.AzureOpenAI(
        azure_endpoint=server.anthropic_url, api_key="k", api_version="2024-10-21", azure_deployment="dep"
    )
    azure.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    rows = {(r["provider"], r["model"]): r for r in get_llm_usage()["models"]}
    assert set(rows) == {("google", "claude-haiku-4-5"), ("azure", "gpt-4o-mini")}
    google = rows[("google", "claude-haiku-4-5")]
    assert google["cost_usd"] == pytest.approx(_expected("google", "claude-haiku-4-5", server.usage), rel=1e-12)
    chat_usage = {**server.usage, "cache_write": 0}  # the chat API has no cache writes
    assert rows[("azure", "gpt-4o-mini")]["cost_usd"] == pytest.approx(
        _expected("azure", "gpt-4o-mini", chat_usage), rel=1e-12
    )


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://api.deepseek.com", "deepseek"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "google"),
        ("https://api.openai.com/v1", "openai"),
        ("http://localhost:11434/v1", None),  # ollama: no table knows it
    ],
)
def test_openai_sdk_at_another_providers_url(url: str, provider: str | None) -> None:
    assert provider_for_url(url) == provider
    client = openai.OpenAI(base_url=url, api_key="k")
    assert billing_provider(client, "openai") == (provider or "openai")


def test_budgets_charge_bedrock_calls(server: FakeLLMServer) -> None:
    get_config_manager().set("llm.budget_usd", 0.001)
    budgets.reset(settings.current())
    client = anthropic.AnthropicBedrock()
    try:
        client.messages.create(model=BEDROCK_MODEL, max_tokens=5, messages=MSGS)
        assert budgets.kernel_spent() == pytest.approx(_expected("aws", BEDROCK_MODEL, server.usage))
        sent = len(server.requests)
        with pytest.raises(budgets.BudgetExceeded):
            client.messages.create(model=BEDROCK_MODEL, max_tokens=5, messages=MSGS)
        assert len(server.requests) == sent  # refused before it was sent
    finally:
        get_config_manager().set("llm.budget_usd", None)
        budgets.reset(settings.current())


def test_unknown_model_and_missing_usage_are_one_line_each(
    server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = anthropic.AnthropicBedrock()
    with caplog.at_level(logging.WARNING, logger="sci_ext.llm"):
        for _ in range(3):
            client.messages.create(model="anthropic.no-such-model-v9:0", max_tokens=5, messages=MSGS)
        server.usage_override = "absent"  # a Bedrock response without usage
        for _ in range(2):
            reply = client.messages.create(model=BEDROCK_MODEL, max_tokens=5, messages=MSGS)
            assert reply.content[0].text  # the user's call is unaffected
    lines = [r.getMessage() for r in caplog.records]
    assert len([m for m in lines if "no-such-model" in m]) == 1, lines
    assert "no price for 'anthropic.no-such-model-v9:0' of provider 'aws'" in "\n".join(lines)
    assert len([m for m in lines if "reported no token usage" in m]) == 1, lines
    rows = {r["model"]: r for r in get_llm_usage()["models"]}
    assert rows["anthropic.no-such-model-v9:0"]["cost_usd"] is None
    assert rows[BEDROCK_MODEL]["unknown_cost_calls"] == 2 and rows[BEDROCK_MODEL]["input"] == 0


def test_requested_and_served_model_both_kept_and_filterable(
    server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from sci_ext.core.llm import history, report

    server.served["gpt-4o-mini"] = "gpt-4o-mini-2024-07-18"  # as the real API answers
    client = openai.OpenAI(base_url=server.openai_url, api_key="sk")
    server.fail(429)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    client.chat.completions.create(model="gpt-4o", messages=MSGS)
    call = next(c for c in usage.BOOK.calls if c.model_requested == "gpt-4o-mini")
    assert (call.model, call.attempts, call.rate_limited) == ("gpt-4o-mini-2024-07-18", 2, 1)
    for name in ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"):
        rows = get_llm_usage(model=name)["models"]
        assert [r["model"] for r in rows] == ["gpt-4o-mini-2024-07-18"], name
    assert get_llm_usage(model="gpt-4o-mini")["total"]["attempts"] == 2
    assert get_llm_usage(model="no-such")["models"] == []
    table = report.table_rows(get_llm_usage(model="gpt-4o-mini"))[0]
    assert table[1] == "gpt-4o-mini-2024-07-18 (asked: gpt-4o-mini)" and table[4] == "2 (1 429)"
    assert history.flush()
    from sci_ext.core.config import get_config

    machine = history.machine_usage(get_config().core.state_dir, since=call.started - 1, model="gpt-4o-mini")
    assert machine["total"]["calls"] >= 1 and machine["total"]["rate_limited"] >= 1
    assert {r["model"] for r in machine["models"]} == {"gpt-4o-mini-2024-07-18"}
    import json

    from sci_ext.cli import main

    capsys.readouterr()
    assert main(["llm", "--since", "1h", "--model", "gpt-4o-mini", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in printed["models"]} == {"gpt-4o-mini-2024-07-18"}
    assert printed["total"]["attempts"] >= 2


@pytest.mark.parametrize(
    "bad_usage",
    [
        {"prompt_tokens": "many", "completion_tokens": -3},
        {"prompt_tokens": None},
        {"weird": {"nested": [1, 2]}},
        "absent",
    ],
)
def test_malformed_usage_is_unknown_tokens_never_an_exception(
    server: FakeLLMServer, bad_usage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server.usage_override = bad_usage
    client = openai.OpenAI(base_url=server.openai_url, api_key="sk", max_retries=0)
    with caplog.at_level(logging.WARNING, logger="sci_ext.llm"):
        try:
            reply = client.chat.completions.create(model="gpt-4o", messages=MSGS)
        except openai.APIResponseValidationError:  # the SDK's own verdict on the body, not sci_ext's
            reply = None
    if reply is not None:
        assert reply.choices[0].message.content
    (call,) = list(usage.BOOK.calls)
    assert call.tokens() == {} or all(isinstance(v, int) and v >= 0 for v in call.tokens().values())
    assert call.cost_usd is None and call.input is None
    assert sum("reported no token usage" in r.getMessage() for r in caplog.records) <= 1


@pytest.mark.parametrize("sdk", ["openai", "anthropic", "bedrock"])
def test_a_stream_cut_in_the_middle_is_recorded_with_unknown_tokens(server: FakeLLMServer, sdk: str) -> None:
    server.cut_streams = True
    if sdk == "openai":
        client: Any = openai.OpenAI(base_url=server.openai_url, api_key="sk", max_retries=0)
        make = lambda: client.chat.completions.create(  # noqa: E731
            model="gpt-4o-mini", messages=MSGS, stream=True, stream_options={"include_usage": True}
        )
    else:
        client = (
            anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk", max_retries=0)
            if sdk == "anthropic"
            else anthropic.AnthropicBedrock(max_retries=0)
        )
        model = "claude-haiku-4-5" if sdk == "anthropic" else BEDROCK_MODEL
        make = lambda: client.messages.create(model=model, max_tokens=5, messages=MSGS, stream=True)  # noqa: E731
    seen = []
    with pytest.raises(Exception) as info:  # the SDK's / HTTP client's error: what the user gets without sci_ext
        for event in make():
            seen.append(event)
    assert type(info.value).__module__.split(".")[0] in ("openai", "anthropic", "httpx2", "httpx", "httpcore")
    (call,) = list(usage.BOOK.calls)
    assert call.status != "ok" and call.cost_usd is None and call.output is None


_FIELDS = ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "cache_read_input_tokens",
           "cache_creation_input_tokens", "prompt_tokens_details", "completion_tokens_details",
           "input_tokens_details", "output_tokens_details", "cached_tokens", "reasoning_tokens")  # fmt: skip


def _junk() -> Any:
    from hypothesis import strategies as st

    leaf = st.one_of(st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(), st.text(max_size=5))
    return st.recursive(
        leaf,
        lambda inner: st.builds(lambda d: SimpleNamespace(**d), st.dictionaries(st.sampled_from(_FIELDS), inner)),
        max_leaves=12,
    )


def test_any_usage_block_reads_as_ints_or_unknown() -> None:
    """Property: whatever a provider puts in ``usage``, reading it never raises and yields ints or None."""
    from hypothesis import given, settings

    from sci_ext.core.llm.extract import StreamUsage, tokens_of

    @settings(max_examples=300, deadline=None)
    @given(_junk())
    def check(block: Any) -> None:
        out = tokens_of(block)
        assert all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in out.values())
        stream = StreamUsage()
        stream.see(SimpleNamespace(type="message_delta", usage=block))
        stream.see(SimpleNamespace(type=None, usage=block, model=block))
        assert stream.model is None or isinstance(stream.model, str)

    check()
