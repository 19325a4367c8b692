"""collect_status(): the documented shape, and what it reads from other processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kernel_harness import REPO

DOC = Path(REPO) / "docs" / "status-api.md"


def documented_keys() -> set[str]:
    block = DOC.read_text().split("```json", 1)[1].split("```", 1)[0]
    return set(re.findall(r'^  "(\w+)":', block, flags=re.M))


def test_status_has_every_documented_key_and_types(telemetry):
    from sci_ext.core.telemetry import collect_status

    status = collect_status()
    assert set(status) == documented_keys()
    assert status["schema"] == 1 and status["kernels"] == [] and status["llm"] is None
    assert status["status"] in ("ok", "degraded", "failing")
    assert {c["name"] for c in status["checks"]} >= {"cache_dir", "disk", "memory", "cpu", "vault"}
    assert set(status["checks"][0]) == {"name", "status", "detail", "duration_ms", "since"}
    res = status["resources"]
    assert set(res) == {"cpu_percent", "cpu_count", "memory", "disk", "gpus"}
    assert set(res["memory"]) == {"used_bytes", "total_bytes", "percent", "limit_source"}
    assert set(res["disk"]) == {"path", "free_bytes", "total_bytes", "percent"} and res["gpus"] == []
    assert set(status["cells"]) == {"total", "errors", "p50_seconds", "p95_seconds"}
    assert set(status["cache"]) == {"hits", "misses", "hit_ratio", "bytes", "entries"}
    assert status["retries"] == {"total": status["retries"]["total"]}
    import json

    json.dumps(status)  # JSON-ready


def test_cells_and_cache_figures_of_this_process(telemetry):
    from sci_ext.core.cache.stats import CacheEvent, record
    from sci_ext.core.telemetry import collect_status
    from sci_ext.core.telemetry.subscribe import record_cell

    before = collect_status(run_checks=False)
    for d in (0.002, 0.002, 0.002, 0.3):
        record_cell(d, None)
    record(CacheEvent("cell", "disk", "hit"))
    record(CacheEvent("cell", "disk", "miss"))
    after = collect_status(run_checks=False)
    assert after["cells"]["total"] == before["cells"]["total"] + 4
    assert after["cells"]["p50_seconds"] is not None and after["cells"]["p95_seconds"] >= after["cells"]["p50_seconds"]
    assert after["cache"]["hits"] == before["cache"]["hits"] + 1
    assert after["cache"]["misses"] == before["cache"]["misses"] + 1
    assert 0 < after["cache"]["hit_ratio"] < 1


OTHER = textwrap.dedent(
    """
    from sci_ext.core import context
    from sci_ext.core.resilience import circuit_breaker, record_error
    from sci_ext.core.telemetry.subscribe import install
    install(monitor=False)
    context.set_process_context(kernel_id="kernel-42")
    b = circuit_breaker("openai", fail_max=1, reset_timeout=120)
    b.trip()
    circuit_breaker("local-llm")
    with context.using(correlation_id="feedc0de"):
        for i in range(60):
            record_error(ConnectionError(f"blip {i}"), "guarded ask")
    """
)


def test_breakers_and_errors_recorded_by_another_process(telemetry):
    from sci_ext.core.telemetry import collect_status

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", OTHER], env=env, check=True, timeout=120)
    status = collect_status(run_checks=False)
    breakers = {b["name"]: b for b in status["breakers"]}
    assert (
        breakers["openai"]["state"] == "open"
        and breakers["openai"]["next_attempt_at"] > breakers["openai"]["opened_at"]
    )
    errors = status["errors"]
    assert len(errors) == 50
    assert errors[0]["message"] == "blip 59" and errors[-1]["message"] == "blip 10"  # newest first
    assert errors[0]["correlation_id"] == "feedc0de" and errors[0]["kernel_id"] == "kernel-42"
    assert errors[0]["category"] == "transient" and errors[0]["where"] == "guarded ask"


def test_error_records_are_bounded_and_redacted(telemetry, monkeypatch):
    from sci_ext.core.security import get_redactor
    from sci_ext.core.telemetry import records

    monkeypatch.setattr(records, "MAX_BYTES", 4096)
    get_redactor().add("K", "supersecretvalue")
    try:
        for i in range(200):
            records.append_error({"where": "w", "message": f"n={i} key=supersecretvalue " + "x" * 600})
    finally:
        get_redactor().remove("K")
    path = records.errors_path()
    assert path.stat().st_size < 4096 * 2 + 2000
    got = records.read_errors(5)
    assert got[0]["message"].startswith("n=199 key=[REDACTED:K]") and len(got[0]["message"]) == 500
    assert "supersecretvalue" not in path.read_text()
    assert records.read_errors(5, path=path.with_name("none.jsonl")) == []


def test_features_never_import_telemetry():
    offenders = []
    for feature in ("cache", "config", "resilience", "security", "errors.py", "context.py", "events.py"):
        root = Path(REPO) / "sci_ext" / "core" / feature
        for path in [root] if root.is_file() else root.rglob("*.py"):
            if re.search(r"^\s*(from|import)\s+[.\w]*telemetry", path.read_text(), flags=re.M):
                offenders.append(str(path))
    assert offenders == []


def test_importing_the_telemetry_package_is_light():
    code = (
        "import sys, sci_ext.core.telemetry as t; t.__all__;"
        "from sci_ext.core import performance_monitor, get_logger, health_check;"
        "print([m for m in ('prometheus_client', 'psutil', 'pythonjsonlogger') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_status_llm_block_holds_the_machine_wide_llm_totals(sci_env):
    """The status's ``llm`` block (dashboard, JupyterLab panel) comes from the LLM history of every kernel."""
    import time

    from sci_ext.core.llm import history
    from sci_ext.core.llm.events import LLMCall, LLMSaved, on_llm_call, on_llm_saved
    from sci_ext.core.telemetry.status import collect_status

    assert collect_status(run_checks=False)["llm"] is None  # no call yet: no block
    history.install()
    try:
        for cost in (0.25, 0.17):
            on_llm_call.emit(
                LLMCall("openai", "gpt-4o-mini", "chat", "ok", time.time(), 0.5, input=100, output=20, cost_usd=cost,
                        model_requested="gpt-4o", attempts=3, rate_limited=2)
            )  # fmt: skip
        on_llm_saved.emit(LLMSaved("cell", "summary", calls=2, cost_usd=0.42))
        assert history.flush()
    finally:
        history.uninstall()
    llm = collect_status(run_checks=False)["llm"]
    assert llm["calls"] == 2 and llm["cost_usd"] == pytest.approx(0.42)
    assert llm["cost_saved_usd"] == pytest.approx(0.42) and llm["calls_saved"] == 2
    assert llm["by_model"] == [
        {"provider": "openai", "model": "gpt-4o-mini", "models_requested": ["gpt-4o"], "calls": 2, "attempts": 6,
         "rate_limited": 4, "input_tokens": 200, "output_tokens": 40, "cost_usd": pytest.approx(0.42)}
    ]  # fmt: skip
    assert (llm["attempts"], llm["rate_limited"], llm["server_errors"], llm["refused"]) == (6, 4, 0, 0)
    assert llm["prices_version"].startswith("genai-prices")
