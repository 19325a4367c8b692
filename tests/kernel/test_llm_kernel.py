"""LLM accounting in a real kernel, with the real openai and anthropic SDKs against the fake server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from kernel_harness import KernelSession

from sci_ext.testing import FakeLLMServer

# The module's tests share one kernel, reset before each (tests/conftest.py `kernel`).
pytestmark = pytest.mark.module_kernel


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def _clients(server: FakeLLMServer) -> str:
    return (
        "import openai, anthropic\n"
        f"oc = openai.OpenAI(base_url={server.openai_url!r}, api_key='sk-test', max_retries=0)\n"
        f"ac = anthropic.Anthropic(base_url={server.anthropic_url!r}, api_key='sk-ant-test', max_retries=0)\n"
        "msgs = [{'role': 'user', 'content': 'hi'}]\n"
    )


def _usage(kernel: KernelSession, args: str = "") -> dict:
    out = kernel.run(f"import json; from sci_ext.core import get_llm_usage; print(json.dumps(get_llm_usage({args})))")
    return json.loads(out.check().stdout.strip().splitlines()[-1])


def _price(provider: str, model: str, tokens: dict[str, int]) -> float:
    """What genai-prices' own calculator says (not sci_ext's cached rates)."""
    from genai_prices import Usage, calc_price

    keys = {"input": "input_tokens", "cached_input": "cache_read_tokens", "cache_write": "cache_write_tokens",
            "output": "output_tokens", "reasoning": "output_reasoning_tokens"}  # fmt: skip
    usage = Usage(**{keys[k]: v for k, v in tokens.items() if v})
    return float(calc_price(usage, model, provider_id=provider).total_price)


def test_calls_are_recorded_with_the_reported_tokens_and_table_cost(
    kernel: KernelSession, llm_server: FakeLLMServer
) -> None:
    kernel.run(_clients(llm_server)).check()
    cell = kernel.run(
        "r = oc.chat.completions.create(model='gpt-4o-mini', messages=msgs)\n"
        "s = oc.chat.completions.create(model='gpt-4o-mini', messages=msgs, stream=True,"
        " stream_options={'include_usage': True})\n"
        "text = ''.join(c.choices[0].delta.content or '' for c in s if c.choices)\n"
        "m = ac.messages.create(model='claude-haiku-4-5', max_tokens=10, messages=msgs)\n"
        "with ac.messages.stream(model='claude-haiku-4-5', max_tokens=10, messages=msgs) as st:\n"
        "    final = st.get_final_message()\n"
        "e = oc.embeddings.create(model='text-embedding-3-small', input='hi')\n"
        "resp = oc.responses.create(model='o3', input='hi')\n"
        "print(type(r).__name__, type(s).__name__, text, type(m).__name__, final.usage.output_tokens)\n"
    ).check()
    # What the user gets is the SDK's own objects, unchanged.
    assert "ChatCompletion Stream Hello from the stream. Message 300" in cell.stdout
    # The cell says what it spent.
    assert "[sci_ext] this cell: 6 LLM calls, $" in cell.stdout
    usage = _usage(kernel)
    rows = {(r["provider"], r["model"]): r for r in usage["models"]}
    assert len(llm_server.requests) == 6
    reported = llm_server.usage
    chat = rows[("openai", "gpt-4o-mini")]
    assert chat["calls"] == 2 and chat["errors"] == 0
    assert chat["input"] == 2 * reported["input"] and chat["cached_input"] == 2 * reported["cached_input"]
    assert chat["output"] == 2 * reported["output"] and chat["reasoning"] == 2 * reported["reasoning"]
    openai_tokens = {k: reported[k] for k in ("input", "cached_input", "output", "reasoning")}
    assert chat["cost_usd"] == pytest.approx(2 * _price("openai", "gpt-4o-mini", openai_tokens), rel=1e-9)
    claude = rows[("anthropic", "claude-haiku-4-5")]
    anthropic_tokens = {k: reported[k] for k in ("input", "cached_input", "cache_write", "output")}
    assert claude["input"] == 2 * reported["input"] and claude["cache_write"] == 2 * reported["cache_write"]
    assert claude["cost_usd"] == pytest.approx(2 * _price("anthropic", "claude-haiku-4-5", anthropic_tokens))
    emb = rows[("openai", "text-embedding-3-small")]
    assert emb["input"] == reported["input"] and emb["output"] == 0
    assert rows[("openai", "o3")]["cost_usd"] == pytest.approx(_price("openai", "o3", openai_tokens))
    assert usage["total"]["calls"] == 6
    assert usage["price_table"].startswith("genai-prices ")


def test_failures_unknown_models_and_async(kernel: KernelSession, llm_server: FakeLLMServer) -> None:
    kernel.run(_clients(llm_server)).check()
    llm_server.fail(429, 500)
    cell = kernel.run(
        "errors = []\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        oc.chat.completions.create(model='gpt-4o-mini', messages=msgs)\n"
        "    except Exception as exc:\n"
        "        errors.append(type(exc).__name__)\n"
        "print(errors)\n"
        "oc.chat.completions.create(model='my-private-llama', messages=msgs)\n"
        "import asyncio\n"
        "aoc = openai.AsyncOpenAI(base_url=oc.base_url, api_key='sk', max_retries=0)\n"
        "aac = anthropic.AsyncAnthropic(base_url=ac.base_url, api_key='sk', max_retries=0)\n"
        "async def go():\n"
        "    await aoc.chat.completions.create(model='gpt-4o-mini', messages=msgs)\n"
        "    st = await aoc.chat.completions.create(model='gpt-4o-mini', messages=msgs, stream=True,"
        " stream_options={'include_usage': True})\n"
        "    async for _ in st: pass\n"
        "    async with aac.messages.stream(model='claude-haiku-4-5', max_tokens=5, messages=msgs) as s:\n"
        "        await s.get_final_message()\n"
        "await go()\n"
    ).check()
    # The SDK's own exceptions, as without sci_ext.
    assert "['RateLimitError', 'InternalServerError']" in cell.stdout
    rows = {r["model"]: r for r in _usage(kernel)["models"]}
    assert rows["gpt-4o-mini"]["calls"] == 4 and rows["gpt-4o-mini"]["errors"] == 2
    assert rows["my-private-llama"]["cost_usd"] is None  # unknown: never guessed
    assert rows["my-private-llama"]["unknown_cost_calls"] == 1
    assert rows["claude-haiku-4-5"]["output"] == llm_server.usage["output"]
    # An override prices the private model.
    kernel.run("%sci_config llm.prices=my-private-llama=1/2").check()
    kernel.run("oc.chat.completions.create(model='my-private-llama', messages=msgs)").check()
    rows = {r["model"]: r for r in _usage(kernel, "since=0")["models"]}
    u = llm_server.usage
    assert rows["my-private-llama"]["cost_usd"] == pytest.approx(
        ((u["input"] - u["cached_input"]) * 1 + u["cached_input"] * 1 + u["output"] * 2) / 1e6
    )


def test_budget_stops_the_call_before_it_is_sent(kernel: KernelSession, llm_server: FakeLLMServer) -> None:
    kernel.run(_clients(llm_server)).check()
    kernel.run("%sci_config llm.budget_usd=0.004").check()
    cell = kernel.run(
        "from sci_ext.core import BudgetExceeded\n"
        "done = 0\n"
        "try:\n"
        "    for _ in range(10):\n"
        "        ac.messages.create(model='claude-haiku-4-5', max_tokens=10, messages=msgs)\n"
        "        done += 1\n"
        "except BudgetExceeded as exc:\n"
        "    print('refused after', done, ':', exc)\n"
    ).check()
    # haiku costs $0.002545 a call here: the second call crosses $0.004, the third is refused.
    assert "refused after 2" in cell.stdout
    assert "was not sent" in cell.stdout and "llm.budget_usd" in cell.stdout
    assert len(llm_server.requests) == 2  # the refused call never reached the server
    assert "at 80%" not in cell.stderr and "is spent" in cell.stderr
    usage = _usage(kernel)
    assert usage["total"]["blocked"] == 1
    # %%guarded --fallback catches it.
    cell = kernel.run(
        "%%guarded --fallback print('budget spent')\nac.messages.create(model='claude-haiku-4-5', max_tokens=10, messages=msgs)"
    ).check()
    assert "budget spent" in cell.text
    assert len(llm_server.requests) == 2


def test_named_budget_is_shared_by_kernels(
    kernel_factory: Callable[..., KernelSession], llm_server: FakeLLMServer
) -> None:
    env = {"SCI_EXT_LLM__BUDGETS": "paper=0.006"}
    first, second = kernel_factory(env=env), kernel_factory(env=env)
    call = "ac.messages.create(model='claude-haiku-4-5', max_tokens=10, messages=msgs)"
    for k in (first, second):
        k.run(_clients(llm_server)).check()
    # $0.002545 a call: 42 %, then 85 % (the alert, in the other kernel), then 127 %, then refused.
    first.run(call).check()
    cell = second.run(call).check()
    assert "LLM budget 'paper' at 85%" in cell.stderr
    cell = first.run(call).check()
    assert "LLM budget 'paper' is spent" in cell.stderr
    cell = second.run(call)
    assert cell.error is not None and cell.error["ename"] == "BudgetExceeded"
    assert "'paper' is spent" in cell.error["evalue"] and "jupyter sci llm --reset-budget paper" in cell.error["evalue"]
    assert len(llm_server.requests) == 3


def test_guarded_retries_count_as_separate_requests(kernel: KernelSession, llm_server: FakeLLMServer) -> None:
    kernel.run(_clients(llm_server) + "%sci_config retry.initial_wait=0 retry.jitter=0").check()
    llm_server.fail(429, 500)
    kernel.run("%%guarded --retries 3\nr = oc.chat.completions.create(model='gpt-4o-mini', messages=msgs)").check()
    rows = {r["model"]: r for r in _usage(kernel)["models"]}
    assert rows["gpt-4o-mini"]["calls"] == 3 and rows["gpt-4o-mini"]["errors"] == 2
    assert len(llm_server.requests) == 3


def test_cache_hits_count_the_cost_saved(kernel: KernelSession, llm_server: FakeLLMServer) -> None:
    kernel.run(_clients(llm_server)).check()
    code = (
        "%%cached summarize --ignore ac\n"
        "answers = [ac.messages.create(model='claude-haiku-4-5', max_tokens=10, messages=msgs).content[0].text"
        " for _ in range(3)]\n"
    )
    kernel.run(code).check()
    hit = kernel.run(code).check()
    assert "restored" in hit.stdout
    assert "[sci_ext] cache hit: saved 3 LLM calls, $" in hit.stdout
    assert len(llm_server.requests) == 3
    kernel.run(
        "from sci_ext.core import cache_result\n"
        "@cache_result(backend='memory')\n"
        "def ask(q):\n"
        "    return oc.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': q}]).id\n"
        "ask('a')"
    ).check()
    second = kernel.run("ask('a')").check()
    assert "[sci_ext] cache hit: saved 1 LLM call, $" in second.stdout
    usage = _usage(kernel)
    assert usage["saved"]["calls"] == 4
    assert usage["saved"]["cost_usd"] == pytest.approx(3 * 0.002545 + 0.000345)


def test_sci_llm_magic_and_cli(kernel: KernelSession, llm_server: FakeLLMServer, sci_env: dict) -> None:
    kernel.run(_clients(llm_server)).check()
    kernel.run("oc.chat.completions.create(model='gpt-4o-mini', messages=msgs)").check()
    table = kernel.run("%sci_llm").check()
    assert "gpt-4o-mini" in table.text and "p95" in table.text
    cell = kernel.run("%sci_llm --cell").check()
    assert "gpt-4o-mini" in cell.text
    bad = kernel.run("%sci_llm --since yesterday")
    assert bad.error is not None and "--since 'yesterday'" in bad.error["evalue"]
    kernel.run("from sci_ext.core.llm import history; history.flush()").check()
    import os
    import subprocess
    import sys

    env = {**os.environ, **{k: str(v) for k, v in sci_env.items() if k.startswith("XDG")}}
    env["XDG_STATE_HOME"] = str(sci_env["XDG_STATE_HOME"])
    out = subprocess.run(
        [sys.executable, "-m", "sci_ext", "llm", "--json"], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["total"]["calls"] == 1 and data["models"][0]["model"] == "gpt-4o-mini"
    kernel.run("%sci_llm --reset").check()
    assert "no LLM calls" in kernel.run("%sci_llm").check().stdout


def test_instrument_false_turns_accounting_off(kernel: KernelSession, llm_server: FakeLLMServer) -> None:
    kernel.run(_clients(llm_server) + "%sci_config llm.instrument=false").check()
    cell = kernel.run("oc.chat.completions.create(model='gpt-4o-mini', messages=msgs)").check()
    assert "this cell" not in cell.stdout
    assert _usage(kernel)["total"]["calls"] == 0
    assert len(llm_server.requests) == 1
    kernel.run("%sci_config llm.instrument=true").check()
    cell = kernel.run("oc.chat.completions.create(model='gpt-4o-mini', messages=msgs)").check()
    assert "[sci_ext] this cell: 1 LLM call" in cell.stdout
    # %unload_ext restores the SDK's own method.
    out = kernel.run(
        "%unload_ext sci_ext\n"
        "from openai._base_client import SyncAPIClient\n"
        "print(hasattr(SyncAPIClient.request, '__sci_ext_original__'))"
    ).check()
    assert out.stdout.strip() == "False"
