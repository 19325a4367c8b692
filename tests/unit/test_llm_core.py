"""LLM accounting in process: prices, extraction, budgets, cache savings, history, metrics, the import hook."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sci_ext.core.config import get_config_manager
from sci_ext.core.errors import BudgetExceeded, ConfigError, SciExtError
from sci_ext.core.llm import prices, report
from sci_ext.core.llm.extract import tokens_of
from sci_ext.testing import FakeLLMServer


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini"),
        ("openai", "o3"),
        ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-sonnet-4-5"),
    ],
)
@pytest.mark.parametrize(
    "tokens",
    [
        {"input": 1200, "cached_input": 200, "output": 300, "reasoning": 50},
        {"input": 5, "output": 1},
        {"input": 250_000, "cached_input": 1000, "cache_write": 500, "output": 900},  # past sonnet's 200k tier
    ],
)
def test_cached_rates_equal_the_table(provider: str, model: str, tokens: dict[str, int]) -> None:
    from genai_prices import Usage, calc_price

    keys = {"input": "input_tokens", "cached_input": "cache_read_tokens", "cache_write": "cache_write_tokens",
            "output": "output_tokens", "reasoning": "output_reasoning_tokens"}  # fmt: skip
    expected = float(
        calc_price(Usage(**{keys[k]: v for k, v in tokens.items()}), model, provider_id=provider).total_price
    )
    assert prices.cost(provider, model, tokens, {}) == pytest.approx(expected, rel=1e-12)


def test_unknown_models_and_overrides() -> None:
    assert prices.cost("openai", "no-such-model-xyz", {"input": 10, "output": 10}, {}) is None
    assert prices.cost("openai", "gpt-4o-mini", {}, {}) is None  # no usage reported: unknown
    own = {"local-llama": (0.0, 0.0)}
    assert prices.cost("openai", "local-llama", {"input": 10, "output": 10}, own) == 0.0
    own = {"m": (2.0, 8.0, 0.5)}
    assert prices.cost("openai", "m", {"input": 1000, "cached_input": 400, "output": 100}, own) == pytest.approx(
        (600 * 2 + 400 * 0.5 + 100 * 8) / 1e6
    )
    assert prices.table_version().startswith("genai-prices 0.")


def test_bad_llm_settings_are_one_clear_error() -> None:
    manager = get_config_manager()
    with pytest.raises(ConfigError, match="llm.budgets"):
        manager.set("llm.budgets", "paper")
    with pytest.raises(ConfigError, match="llm.prices"):
        manager.set("llm.prices", "m=1/x")
    manager.set("llm.budgets", "paper=20,team=100")
    from sci_ext.core.llm import settings

    assert settings.current().budgets == {"paper": 20.0, "team": 100.0}


def test_token_extraction_of_each_api() -> None:
    chat = {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}}  # fmt: skip

    class Obj:
        def __init__(self, **kw: object) -> None:
            for k, v in kw.items():
                setattr(self, k, Obj(**v) if isinstance(v, dict) else v)

    assert tokens_of(Obj(**chat)) == {"input": 10, "output": 5, "cached_input": 4, "reasoning": 2}
    resp = Obj(input_tokens=10, output_tokens=5, input_tokens_details={"cached_tokens": 3},
               output_tokens_details={"reasoning_tokens": 1})  # fmt: skip
    assert tokens_of(resp) == {"input": 10, "output": 5, "cached_input": 3, "reasoning": 1}
    claude = Obj(input_tokens=10, output_tokens=5, cache_read_input_tokens=3, cache_creation_input_tokens=2)
    assert tokens_of(claude) == {"input": 15, "output": 5, "cached_input": 3, "cache_write": 2}


def test_since_parsing_and_money() -> None:
    assert report.parse_since("10m", now=1000.0) == 400.0
    assert report.parse_since("2h", now=10_000.0) == 2800.0
    with pytest.raises(ValueError, match="--since 'soon'"):
        report.parse_since("soon")
    assert report.money(0.42) == "$0.42"
    assert report.money(None) == "unknown"
    assert report.notice(14, 0.42) == "14 calls, $0.42"


def test_budget_exceeded_is_a_sci_ext_error() -> None:
    from sci_ext.core.llm import budgets, hints, settings

    get_config_manager().set("llm.budget_usd", 1.0)
    budgets.reset(settings.current())
    budgets.charge(settings.current(), 1.5)
    with pytest.MonkeyPatch.context() as mp:  # a script (an earlier test may have loaded the extension)
        mp.setattr(hints, "in_kernel", lambda: False)
        with pytest.raises(BudgetExceeded) as info:
            budgets.check(settings.current(), "this call")
    assert isinstance(info.value, SciExtError)
    assert info.value.spent_usd == 1.5 and info.value.limit_usd == 1.0
    # in a script: the environment variable, the config file key and the library call (item 4 of issue 20)
    message = str(info.value)
    assert "SCI_EXT_LLM__BUDGET_USD=<USD>" in message and "budget_usd = <USD> under [llm]" in message
    assert "get_config_manager().set('llm.budget_usd', <USD>)" in message and "%sci_config" not in message
    with pytest.MonkeyPatch.context() as mp:  # in a kernel with the extension loaded: the magics
        mp.setattr(hints, "in_kernel", lambda: True)
        with pytest.raises(BudgetExceeded, match=r"%sci_config llm.budget_usd=<USD> .*%sci_llm --reset"):
            budgets.check(settings.current(), "this call")
    assert hints.env_name("llm.max_retry_seconds") == "SCI_EXT_LLM__MAX_RETRY_SECONDS"
    budgets.reset(settings.current())
    budgets.check(settings.current(), "this call")


def test_named_budget_over_redis(redis_server: object) -> None:
    from sci_ext.core.llm import budgets, settings

    url = redis_server.url  # type: ignore[attr-defined]
    get_config_manager().set_many({"llm.budgets": "shared=1", "llm.redis_url": url})
    s = settings.current()
    budgets.reset(s, "shared")
    budgets.charge(s, 0.6)
    budgets.charge(s, 0.6)
    import redis

    raw = redis.Redis.from_url(url).get("sci_ext:llm_budgets:shared")
    assert raw is not None and b"1.2" in raw
    with pytest.raises(BudgetExceeded, match="'shared' is spent"):
        budgets.check(s, "this call")


def test_script_sdk_imported_after_instrument_is_patched(tmp_path: Path) -> None:
    """The import hook: sci_ext imports no SDK itself; one imported later is patched on import."""
    with FakeLLMServer() as server:
        script = textwrap.dedent(f"""
            import sys
            from sci_ext.core import llm
            llm.instrument()
            assert "openai" not in sys.modules and "anthropic" not in sys.modules
            import openai
            print(llm.instrumented())
            c = openai.OpenAI(base_url={server.openai_url!r}, api_key="sk", max_retries=0)
            c.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "x"}}])
            print(llm.get_llm_usage()["total"]["calls"])
            llm.uninstrument()
            c.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "x"}}])
            print(llm.get_llm_usage()["total"]["calls"])
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['openai']", "1", "1"]


def test_cache_result_savings_and_history(tmp_path: Path) -> None:
    from sci_ext.core import cache_result
    from sci_ext.core.llm import LLMCall, history, on_llm_saved, savings, usage

    savings.install()
    history.install()
    saved: list[object] = []
    remove = on_llm_saved.add(saved.append)
    try:

        def make() -> object:
            @cache_result(backend="disk")
            def work(x: int) -> int:
                for _ in range(2):
                    usage.record(
                        LLMCall("openai", "gpt-4o-mini", "chat.completions", "ok", 0.0, 0.1, input=100, output=10)
                    )
                return x

            return work

        work = make()
        assert work(1) == 1 and work(1) == 1  # type: ignore[operator]
        assert len(saved) == 1 and saved[0].calls == 2  # type: ignore[attr-defined]
        fresh = make()  # an empty memory layer: the disk entry carries the annotations
        assert fresh(1) == 1  # type: ignore[operator]
        assert len(saved) == 2 and saved[1].calls == 2  # type: ignore[attr-defined]
    finally:
        remove()
        savings.uninstall()
        history.uninstall()
    assert history.flush()
    from sci_ext.core.config import get_config

    machine = history.machine_usage(get_config().core.state_dir)
    assert machine["total"]["calls"] >= 2 and machine["saved"]["calls"] >= 4


def test_metrics_are_promtool_clean() -> None:
    import shutil

    from prometheus_client import CollectorRegistry, generate_latest

    from sci_ext.core.llm import LLMCall, metrics

    registry = CollectorRegistry()
    saved = dict(metrics._metrics), dict(metrics._children)  # the default registry's, put back after
    metrics._metrics.clear()
    metrics._children.clear()
    metrics.metrics(registry)
    try:
        metrics._on_call(LLMCall("openai", "gpt-4o-mini", "chat.completions", "ok", 0, 0.2, input=10, output=5,
                                 cost_usd=0.001))  # fmt: skip
        metrics._on_call(LLMCall("anthropic", "claude-haiku-4-5", "messages", "blocked", 0, 0.0))
        metrics._on_call(LLMCall("aws", "m", "messages", "ok", 0, 0.2, attempts=4, rate_limited=2, server_errors=1))
        text = generate_latest(registry).decode()
    finally:
        metrics._metrics.clear()
        metrics._children.clear()
        metrics._metrics.update(saved[0])
        metrics._children.update(saved[1])
    assert 'sci_llm_requests_total{model="gpt-4o-mini",provider="openai",status="ok"} 1.0' in text
    assert 'sci_llm_tokens_total{kind="input",model="gpt-4o-mini",provider="openai"} 10.0' in text
    assert "sci_llm_request_duration_seconds_bucket" in text and "sci_llm_cost_saved_usd_total" in text
    for outcome, n in (("ok", 1), ("rate_limited", 2), ("server_error", 1)):
        assert f'sci_llm_attempts_total{{model="m",outcome="{outcome}",provider="aws"}} {n}.0' in text
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_model_labels_are_bounded() -> None:
    from sci_ext.core.llm import metrics

    get_config_manager().set_many({"llm.max_model_labels": 2, "llm.model_labels": "pinned"})
    metrics._seen.clear()
    try:
        labels = [metrics.model_label(m) for m in ("a", "b", "c", "pinned", "a")]
    finally:
        metrics._seen.clear()
    assert labels == ["a", "b", "other", "pinned", "a"]
