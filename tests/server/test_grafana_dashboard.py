"""The Grafana dashboard, proven with what runs here: every panel's PromQL against a real Prometheus.

Grafana itself cannot run on this machine; the dashboard is only PromQL in a JSON
model, so the test loads the committed JSON, extracts every expression and runs each
against a real Prometheus that has scraped a real Jupyter server whose kernel ran
cells, cache hits, retries, an opened breaker and an auth failure.  Each must parse
and return data, unless its panel says "May be empty".
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from live_server import LiveServer
from prometheus_server import PrometheusServer

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "monitoring" / "grafana" / "sci_ext.json"


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "make_grafana_dashboard", REPO / "scripts" / "make_grafana_dashboard.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expressions(dashboard: dict) -> list[tuple[str, str, bool]]:
    """(panel title, expr, may be empty) for every target of every panel."""
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            # The user variable as Grafana sends it with "All" selected (allValue).
            expr = target["expr"].replace('"$user"', '".*"')
            out.append((panel["title"], expr, "may be empty" in panel.get("description", "").lower()))
    return out


def test_committed_dashboard_is_the_generated_one_and_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard == load_generator().build(), "run python scripts/make_grafana_dashboard.py"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in dashboard["panels"]}
    for section in ("Cells", "Cache", "Retries and breakers", "Security", "Resources and health", "LLM"):
        assert section in titles
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
    names = " ".join(expr for _, expr, _ in expressions(dashboard))
    for metric in (
        "sci_cell_duration_seconds",
        "sci_cache_requests_total",
        "sci_cache_size_bytes",
        "sci_retry_attempts_total",
        "sci_breaker_state",
        "sci_errors_total",
        "sci_auth_failures_total",
        "sci_health_check_status",
        "sci_llm_cost_usd_total",
    ):
        assert metric in names, metric


@pytest.mark.slow
def test_every_panel_query_runs_on_a_real_prometheus(sci_env, tmp_path):
    server = LiveServer(tmp_path / "jupyter").start()
    prometheus = None
    try:
        ws = server.kernel(server.start_kernel())
        for cell in (
            "%load_ext sci_ext\n%sci_config breaker.fail_max=1 retry.initial_wait=0.01 retry.jitter=0",
            "%%cached squares\nsquares = [i * i for i in range(10)]",
            "%%cached squares\nsquares = [i * i for i in range(10)]",
            "%%guarded svc --retries 1 --breaker svc\nraise TimeoutError('the service hangs')",
        ):
            ws.execute(cell)
        assert server.get("/sci/metrics", headers={"Authorization": "Bearer sci_bad_token"}).status in (401, 403)
        token = subprocess.run(
            [sys.executable, "-m", "sci_ext", "apikey", "create", "grafana-test", "--scope", "metrics:read"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            check=True,
        ).stdout.strip()
        (tmp_path / "prom").mkdir()
        prometheus = PrometheusServer(tmp_path / "prom", [(f"127.0.0.1:{server.port}", token)]).start()
        prometheus.wait_up(1)
        prometheus.wait_for("sum(sci_cell_duration_seconds_count)", lambda r: r and float(r[0]["value"][1]) >= 3)
        prometheus.wait_for("count(sci_cell_duration_seconds_count)", lambda r: r, timeout=10)
        # rate() needs two samples in its window: wait for a few more scrapes.
        prometheus.wait_for(
            "count_over_time(sci_cell_duration_seconds_count[5m])", lambda r: r and float(r[0]["value"][1]) >= 3
        )
        empty = []
        for title, expr, may_be_empty in expressions(json.loads(DASHBOARD.read_text())):
            result = prometheus.query(expr)  # raises with Prometheus's error for bad PromQL
            if not result["result"] and not may_be_empty:
                empty.append(f"{title}: {expr}")
        assert not empty, "panels without data:\n" + "\n".join(empty)
    finally:
        if prometheus is not None:
            prometheus.stop()
        server.stop()
