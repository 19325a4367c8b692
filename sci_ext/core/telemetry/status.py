"""``collect_status()``: the JSON every panel reads (``docs/status-api.md``, schema 1).

Readable from any process sharing ``core.state_dir``: cell and cache figures come from
the Prometheus multiprocess files there (plus this process's own registry), breakers
from the shared breaker store, errors from the shared error records, alerts from every
live process's published alerts.  ``kernels`` is ``[]`` and ``llm`` ``None`` here: the
server extension and LLM accounting fill them in.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ..._version import __version__

__all__ = ["SCHEMA", "breakers_status", "cells_status", "collect_status"]

SCHEMA = 1
_log = logging.getLogger("sci_ext.status")


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus' histogram_quantile over cumulative ``(le, count)`` buckets."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def _sum(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **match: str) -> float:
    return sum(v for labels, v in samples.get(name, []) if all(labels.get(k) == x for k, x in match.items()))


def cells_status(samples: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, Any]:
    """``{"total", "errors", "p50_seconds", "p95_seconds"}`` from ``sci_cell_duration_seconds``."""
    by_le: dict[float, float] = {}
    for labels, value in samples.get("sci_cell_duration_seconds_bucket", []):
        le = float(labels.get("le", "inf"))
        by_le[le] = by_le.get(le, 0.0) + value
    buckets = list(by_le.items())
    p50, p95 = _quantile(buckets, 0.5), _quantile(buckets, 0.95)
    return {
        "total": int(_sum(samples, "sci_cell_duration_seconds_count")),
        "errors": int(_sum(samples, "sci_cell_errors_total")),
        "p50_seconds": None if p50 is None else round(p50, 4),
        "p95_seconds": None if p95 is None else round(p95, 4),
    }


def _cache_status(samples: dict[str, list[tuple[dict[str, str], float]]], cfg: Any) -> dict[str, Any]:
    hits = int(_sum(samples, "sci_cache_requests_total", result="hit"))
    misses = int(_sum(samples, "sci_cache_requests_total", result="miss"))
    out: dict[str, Any] = {"hits": hits, "misses": misses, "hit_ratio": round(hits / (hits + misses), 4)
                           if hits + misses else None, "bytes": 0, "entries": 0}  # fmt: skip
    directory = Path(cfg.cache.dir).expanduser()
    if directory.is_dir():
        try:
            from ..cache.layered import get_disk_store

            store = get_disk_store(str(directory), cfg.cache.size_limit_bytes)
            out["bytes"] = int(store.volume())
            out["entries"] = len(store.entries())
        except Exception as exc:
            _log.debug("cache figures unavailable: %s", exc)
    return out


def llm_status(cfg: Any) -> dict[str, Any] | None:
    """Machine-wide LLM totals (every kernel sharing ``core.state_dir``); ``None`` before any call."""
    from ..llm import history
    from ..llm.prices import table_version

    data = history.machine_usage(cfg.core.state_dir)
    total, saved = data["total"], data["saved"]
    if not total["calls"] and not saved["hits"]:
        return None
    return {
        "calls": total["calls"],
        "errors": total["errors"],
        "attempts": total.get("attempts", total["calls"]),
        "rate_limited": total.get("rate_limited", 0),
        "server_errors": total.get("server_errors", 0),
        "refused": total.get("refused", 0),
        "cost_usd": total["cost_usd"],
        "cost_saved_usd": saved["cost_usd"],
        "calls_saved": saved["calls"],
        "prices_version": table_version(),
        "by_model": [
            {
                "provider": row["provider"],
                "model": row["model"],
                "models_requested": row.get("requested", []),
                "calls": row["calls"],
                "attempts": row.get("attempts", row["calls"]),
                "rate_limited": row.get("rate_limited", 0),
                "input_tokens": row.get("input", 0),
                "output_tokens": row.get("output", 0),
                "cost_usd": row["cost_usd"],
            }
            for row in data["models"]
        ],
    }


def breakers_status(cfg: Any = None) -> list[dict[str, Any]]:
    """Every breaker in the shared store of ``core.state_dir`` (and Redis when configured)."""
    if cfg is None:
        from ..config import get_config

        cfg = get_config()
    from ..resilience.breaker import HALF_OPEN, OPEN, get_breaker
    from ..resilience.store import resolve_store, store_keys

    redis_url = getattr(cfg.breaker, "redis_url", None) or cfg.cache.redis_url
    if not redis_url and not (Path(cfg.core.state_dir).expanduser() / "breakers").is_dir():
        return []
    store = resolve_store(None, "breakers", redis_url)
    now = time.time()
    out = []
    for name in sorted(store_keys(store)):
        record = store.load(name)
        if not isinstance(record, dict):
            continue
        local = get_breaker(name)
        reset_timeout = local.reset_timeout if local is not None else float(cfg.breaker.reset_timeout)
        state = str(record.get("state", "closed"))
        opened_at = float(record.get("opened_at") or 0.0)
        next_at = opened_at + reset_timeout if state == OPEN else None
        if state == OPEN and next_at is not None and now >= next_at:
            state = HALF_OPEN
        out.append({
            "name": name,
            "state": state,
            "failures": int(record.get("failures", 0)),
            "opened_at": opened_at or None,
            "next_attempt_at": next_at,
        })  # fmt: skip
    return out


def _safe(what: str, default: Any, func: Any, *args: Any) -> Any:
    try:
        return func(*args)
    except Exception as exc:  # one broken part must not hide the others
        _log.warning("status: %s unavailable: %s", what, exc)
        return default


def collect_status(*, run_checks: bool = True) -> dict[str, Any]:
    """The status of this machine's sci_ext, in the shape of ``docs/status-api.md``.

    ``run_checks=False`` reuses the last results of this process (the background monitor
    runs the checks every ``monitoring.check_interval_seconds``) instead of running them.
    """
    from ..config import get_config
    from .alerts import active_alerts
    from .health import last_report, run_health_checks
    from .metrics import collected_samples
    from .records import read_errors
    from .resources import resources

    cfg = get_config()
    report = run_health_checks() if run_checks else last_report()
    samples = _safe("metrics", {}, collected_samples)
    checks = [c.as_dict() for c in report.checks] if report else []
    from ..security.redact import get_redactor

    # Issue 18: every string field passes the redactor once more (user-chosen names such as
    # breaker or check names, details and paths included), so no field carries a known secret.
    return get_redactor().redact_data({
        "schema": SCHEMA,
        "version": __version__,
        "environment": cfg.core.environment,
        "time": time.time(),
        "status": report.status if report else "ok",
        "checks": checks,
        "resources": _safe("resources", {}, resources, cfg.core.state_dir),
        "kernels": [],
        "cells": cells_status(samples),
        "cache": _safe("cache", {}, _cache_status, samples, cfg),
        "breakers": _safe("breakers", [], breakers_status, cfg),
        "retries": {"total": int(_sum(samples, "sci_retry_attempts_total"))},
        "errors": _safe("errors", [], read_errors, 50),
        "alerts": _safe("alerts", [], active_alerts),
        "llm": _safe("llm", None, llm_status, cfg),
    })  # fmt: skip
