"""Write monitoring/grafana/sci_ext.json, the Grafana dashboard of sci_ext's metrics.

Generated so that every panel has the same shape; ``tests/server/test_grafana_dashboard.py``
runs each panel's PromQL against a real Prometheus that scraped a server with busy
kernels.  A panel whose description says "May be empty" may return no series (alerts
that are not firing, LLM calls not made); every other one must return data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "monitoring" / "grafana" / "sci_ext.json"
DS = {"type": "prometheus", "uid": "${datasource}"}

# (row, title, description, unit, kind, [(legend, expr), ...])
PANELS: list[tuple[str, str, str, str, str, list[tuple[str, str]]]] = [
    # First row: the symptoms the alerts watch (monitoring/prometheus/sci_ext.rules.yml), nothing else.
    (
        "What needs attention",
        "External calls failing (5 min)",
        "Calls that gave up after retries or were refused by an open breaker (ExternalCallsFailing at 3).",
        "short",
        "stat",
        [
            (
                "failed calls",
                'sum(increase(sci_errors_total{category=~"transient|rate_limit|timeout"}[5m])) or vector(0)',
            )
        ],
    ),
    (
        "What needs attention",
        "LLM budgets spent",
        "May be empty: spend over limit of each LLM budget (LLMBudgetNearlySpent at 80 %).",
        "percentunit",
        "bargauge",
        [("{{budget}}", "max by (budget) (sci_llm_budget_spent_ratio)")],
    ),
    (
        "What needs attention",
        "Memory of the limit",
        "Memory of the cgroup limit, else the host (KernelMemoryNearLimit at 90 % for 2 min).",
        "percent",
        "timeseries",
        [("memory {{instance}}", "max by (instance) (sci_memory_percent)")],
    ),
    (
        "What needs attention",
        "Cells past their usual time",
        "A running cell's time over its own median, once 5x and 60 s past it (CellRunningLong).",
        "short",
        "timeseries",
        [("overrun {{instance}}", "max by (instance) (sci_cell_overrun_ratio)")],
    ),
    (
        "What needs attention",
        "Slowest endpoints (p95)",
        "Server endpoints' p95 response time, connections excluded (EndpointSlow above 1 s for 5 min).",
        "s",
        "timeseries",
        [
            (
                "{{handler}}",
                "topk(5, histogram_quantile(0.95, sum by (le, handler) (rate(http_request_duration_seconds_bucket"
                '{handler!~".*(WebSocket|Websocket|Channels|EventHandler|TermSocket).*"}[5m]))))',
            )
        ],
    ),
    (
        "Cells",
        "Cells per second",
        "Cell runs in kernels with the extension loaded, every server summed.",
        "ops",
        "timeseries",
        [("cells/s", "sum(rate(sci_cell_duration_seconds_count[5m]))")],
    ),
    (
        "Cells",
        "Cell duration",
        "p50 and p95 of cell durations over 5 minutes.",
        "s",
        "timeseries",
        [
            ("p50", "histogram_quantile(0.5, sum by (le) (rate(sci_cell_duration_seconds_bucket[5m])))"),
            ("p95", "histogram_quantile(0.95, sum by (le) (rate(sci_cell_duration_seconds_bucket[5m])))"),
        ],
    ),
    (
        "Cells",
        "Failed cells (15 min)",
        "Cells that raised.",
        "short",
        "stat",
        [("failed", "sum(increase(sci_cell_errors_total[15m]))")],
    ),
    (
        "Cache",
        "Cache requests",
        "%%cached and cache_result requests by layer and result.",
        "reqps",
        "timeseries",
        [("{{layer}} {{result}}", "sum by (layer, result) (rate(sci_cache_requests_total[5m]))")],
    ),
    (
        "Cache",
        "Cache hit ratio",
        "Hits over hits and misses, 15 minutes.",
        "percentunit",
        "stat",
        [
            (
                "hit ratio",
                'sum(increase(sci_cache_requests_total{result="hit"}[15m])) / '
                'clamp_min(sum(increase(sci_cache_requests_total{result=~"hit|miss"}[15m])), 1e-9)',
            )
        ],
    ),
    (
        "Cache",
        "Cache size",
        "Bytes in the cell cache (largest report per server).",
        "bytes",
        "stat",
        [("bytes", "max by (instance) (sci_cache_size_bytes)")],
    ),
    (
        "Retries and breakers",
        "Retries (15 min)",
        "Retried attempts by guarded name and error type.",
        "short",
        "timeseries",
        [("{{name}} {{error_type}}", "sum by (name, error_type) (increase(sci_retry_attempts_total[15m]))")],
    ),
    (
        "Retries and breakers",
        "Breaker state",
        "0 closed, 1 half-open, 2 open.",
        "short",
        "timeseries",
        [("{{name}}", "max by (name) (sci_breaker_state)")],
    ),
    (
        "Retries and breakers",
        "Errors by category (15 min)",
        "Errors recorded by handle_errors and %%guarded.",
        "short",
        "timeseries",
        [("{{category}}", "sum by (category) (increase(sci_errors_total[15m]))")],
    ),
    (
        "Security",
        "Auth failures (5 min)",
        "Failed API-key and endpoint authentications.",
        "short",
        "stat",
        [("failures", "sum(increase(sci_auth_failures_total[5m]))")],
    ),
    (
        "Resources and health",
        "CPU and memory",
        "Of each server's machine (cgroup limits honoured). CPU is information: it never alerts.",
        "percent",
        "timeseries",
        [
            ("cpu {{instance}}", "max by (instance) (sci_cpu_percent)"),
            ("memory {{instance}}", "max by (instance) (sci_memory_percent)"),
        ],
    ),
    (
        "Resources and health",
        "Health checks",
        "0 ok, 1 degraded, 2 failing.",
        "short",
        "timeseries",
        [("{{check}}", "max by (check) (sci_health_check_status)")],
    ),
    (
        "Resources and health",
        "Active alerts",
        "May be empty: only alerts that are firing have a series.",
        "short",
        "table",
        [("{{alert}}", "max by (alert) (sci_alerts_active > 0)")],
    ),
    (
        "LLM",
        "LLM cost (1 h)",
        "May be empty: USD per model, from the openai and anthropic SDKs.",
        "currencyUSD",
        "timeseries",
        [("{{model}}", "sum by (provider, model) (increase(sci_llm_cost_usd_total[1h]))")],
    ),
    (
        "LLM",
        "LLM tokens",
        "May be empty: tokens per second by kind.",
        "short",
        "timeseries",
        [("{{kind}}", "sum by (kind) (rate(sci_llm_tokens_total[5m]))")],
    ),
    (
        "LLM",
        "LLM cost saved by cache hits",
        "May be empty: USD that %%cached hits did not spend again.",
        "currencyUSD",
        "stat",
        [("saved", "sum(sci_llm_cost_saved_usd_total)")],
    ),
    (
        "LLM",
        "LLM requests",
        "May be empty: requests by model and status.",
        "reqps",
        "timeseries",
        [("{{model}} {{status}}", "sum by (model, status) (rate(sci_llm_requests_total[5m]))")],
    ),
]


#: JupyterHub users: the ``user`` label `jupyter sci hub scrape-config` puts on each user's job.
#: "All" is ``.*``, which also matches servers scraped without the label.
USER_VARIABLE: dict[str, Any] = {
    "name": "user",
    "label": "User",
    "type": "query",
    "datasource": DS,
    "query": {"query": "label_values(sci_cell_duration_seconds_count, user)", "refId": "user"},
    "definition": "label_values(sci_cell_duration_seconds_count, user)",
    "includeAll": True,
    "multi": True,
    "allValue": ".*",
    "refresh": 2,
    "sort": 1,
    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
}

_SELECTOR = re.compile(r"\b(sci_[a-z0-9_]+|http_request_duration_seconds_bucket)(\{([^}]*)\})?")


def by_user(expr: str) -> str:
    """``expr`` with every series selector restricted to the chosen users (``user=~"$user"``)."""

    def add(match: re.Match[str]) -> str:
        name, labels = match.group(1), match.group(3)
        if labels is None or not labels.strip():
            return f'{name}{{user=~"$user"}}'
        return f'{name}{{{labels}, user=~"$user"}}'

    return _SELECTOR.sub(add, expr)


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (schema 39)."""
    panels: list[dict[str, Any]] = []
    y = 0
    row_name = None
    x = 0
    pid = 1
    for row, title, description, unit, kind, targets in PANELS:
        if row != row_name:
            if x:
                y += 8
            panels.append(
                {
                    "type": "row",
                    "title": row,
                    "id": pid,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                }
            )
            pid += 1
            y += 1
            x = 0
            row_name = row
        if x >= 24:
            x = 0
            y += 8
        panels.append(
            {
                "type": kind,
                "title": title,
                "description": description,
                "id": pid,
                "datasource": DS,
                "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {},
                "targets": [
                    {"refId": chr(ord("A") + i), "datasource": DS, "expr": by_user(expr), "legendFormat": legend}
                    for i, (legend, expr) in enumerate(targets)
                ],
            }
        )
        pid += 1
        x += 8
    return {
        "title": "sci_ext",
        "uid": "sci-ext",
        "description": "Cells, cache, retries and breakers, errors, auth failures, resources, health and LLM cost "
        "of Jupyter servers and kernels running sci_ext (scraped from /sci/metrics).",
        "tags": ["jupyter", "sci_ext"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
                USER_VARIABLE,
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT}")
