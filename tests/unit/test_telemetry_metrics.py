"""Metrics fed by the features' events, bounded labels, promtool, multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kernel_harness import REPO
from telemetry_fixtures import promtool, sample


def test_cache_retry_breaker_error_and_auth_events_become_metrics(telemetry, fast_vault, no_waits):
    from sci_ext.core.cache.stats import CacheEvent, record
    from sci_ext.core.errors import AuthenticationError, CircuitOpenError
    from sci_ext.core.resilience import circuit_breaker, handle_errors, retry_with_backoff
    from sci_ext.core.security import get_security_manager

    hits = sample("sci_cache_requests_total", layer="disk", result="hit")
    record(CacheEvent("function", "disk", "hit"))
    record(CacheEvent("function", "disk", "hit"))
    assert sample("sci_cache_requests_total", layer="disk", result="hit") == hits + 2

    calls = []

    @retry_with_backoff(max_attempts=3, name="fetch-x")
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("blip")
        return "ok"

    before = sample("sci_retry_attempts_total", name="fetch-x", error_type="ConnectionError")
    assert flaky() == "ok"
    assert sample("sci_retry_attempts_total", name="fetch-x", error_type="ConnectionError") == before + 2

    breaker = circuit_breaker("metrics-test", fail_max=1, reset_timeout=60, store="memory")
    breaker.trip()
    assert sample("sci_breaker_state", name="metrics-test") == 2
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    breaker.reset()
    assert sample("sci_breaker_state", name="metrics-test") == 0

    errors = sample("sci_errors_total", category="unknown")

    @handle_errors(fallback=None)
    def broken():
        raise ValueError("bad input")

    broken()
    assert sample("sci_errors_total", category="unknown") == errors + 1

    failures = sample("sci_auth_failures_total")
    manager = get_security_manager()
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            manager.validate_api_key("sci_nope_nope", client="scraper")
    assert sample("sci_auth_failures_total") == failures + 3


def test_health_reports_set_the_check_gauge(telemetry):
    from sci_ext.core.telemetry.health import health_check, run_health_checks, unregister_check

    @health_check("gauge-check")
    def degraded():
        return "degraded", "slow"

    try:
        run_health_checks(["gauge-check"])
        assert sample("sci_health_check_status", check="gauge-check") == 1
    finally:
        unregister_check("gauge-check")


def test_metrics_off_updates_nothing(telemetry, monkeypatch):
    from sci_ext.core.cache.stats import CacheEvent, record
    from sci_ext.core.config import get_config_manager

    get_config_manager().set("monitoring.metrics_enabled", False)
    before = sample("sci_cache_requests_total", layer="memory", result="store")
    record(CacheEvent("cell", "memory", "store"))
    assert sample("sci_cache_requests_total", layer="memory", result="store") == before


def test_label_values_are_bounded():
    from sci_ext.core.telemetry.metrics import LabelLimiter

    limiter = LabelLimiter(limit=3, max_length=10)
    assert [limiter(f"n{i}") for i in range(5)] == ["n0", "n1", "n2", "other", "other"]
    assert limiter("n1") == "n1"
    bounded = LabelLimiter(limit=5, max_length=10)
    assert bounded("a\nb" + "x" * 50) == "a_b" + "x" * 7


def test_breaker_names_beyond_the_limit_go_to_other(telemetry):
    from sci_ext.core.resilience.hooks import BreakerEvent, on_breaker_change
    from sci_ext.core.telemetry.metrics import MAX_LABEL_VALUES, get_metrics

    limiter = get_metrics().breaker_names
    for i in range(MAX_LABEL_VALUES + 10):
        on_breaker_change.emit(BreakerEvent(f"user-breaker-{i}", "closed", "open", 5))
    assert len(limiter._seen) <= MAX_LABEL_VALUES
    assert sample("sci_breaker_state", name="other") == 2


def test_metrics_text_passes_promtool(telemetry):
    from sci_ext.core.telemetry import generate_metrics_text, performance_monitor
    from sci_ext.core.telemetry.subscribe import record_cell

    record_cell(0.2, None)
    performance_monitor(lambda: 1)()
    text = generate_metrics_text()
    for name in (
        "sci_cell_duration_seconds",
        "sci_cache_requests_total",
        "sci_cache_size_bytes",
        "sci_retry_attempts_total",
        "sci_breaker_state",
        "sci_errors_total",
        "sci_auth_failures_total",
        "sci_health_check_status",
        "sci_alerts_active",
        "sci_function_duration_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')} " in text or f"# TYPE {name} " in text, name
    # Only sci_ext's families: this pytest process may also hold jupyter_server's own metrics
    # (imported by the in-process server tests), one of which promtool rejects.
    ours = "\n".join(
        line for line in text.splitlines() if line.split(" ")[2 if line.startswith("#") else 0].startswith("sci_")
    )
    res = promtool("check", "metrics", stdin=ours + "\n")
    assert res.returncode == 0, res.stdout + res.stderr


WORKER = textwrap.dedent(
    """
    import sys
    from sci_ext.core.resilience.hooks import BreakerEvent, on_breaker_change
    from sci_ext.core.telemetry.subscribe import install, record_cell
    install(monitor=False)
    for _ in range(int(sys.argv[1])):
        record_cell(0.01, None)
    record_cell(0.5, ZeroDivisionError("x"), "cell [9]")
    on_breaker_change.emit(BreakerEvent("shared", "closed", sys.argv[2], 3))
    """
)


def test_multiprocess_mode_aggregates_every_process(sci_env, tmp_path):
    from sci_ext.core.telemetry.metrics import aggregate_metrics_text

    mp_dir = tmp_path / "prom"
    mp_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", WORKER, "5", "open"], env=env, check=True, timeout=120)
    subprocess.run([sys.executable, "-c", WORKER, "7", "half_open"], env=env, check=True, timeout=120)
    assert sorted(p.name.split("_")[0] for p in mp_dir.iterdir())  # .db files written
    text = aggregate_metrics_text(mp_dir)
    assert "sci_cell_duration_seconds_count 14.0" in text
    assert "sci_cell_errors_total 2.0" in text
    assert 'sci_errors_total{category="unknown"} 2.0' in text
    assert 'sci_breaker_state{name="shared"} 1.0' in text  # mostrecent: the second process's half_open
    res = promtool("check", "metrics", stdin=text)
    assert res.returncode == 0, res.stdout + res.stderr


def test_missing_multiprocess_dir_is_created_or_metrics_stay_in_process(sci_env, tmp_path):
    missing = tmp_path / "not-yet" / "prom"
    code = (
        "from sci_ext.core.telemetry.subscribe import record_cell\n"
        "record_cell(0.01, None)\n"
        "import os; print(os.path.isdir(os.environ['PROMETHEUS_MULTIPROC_DIR']))"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(missing), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr
    assert any(p.name.startswith("histogram_") for p in missing.iterdir())


def test_updates_before_the_metrics_exist_wait_for_them(monkeypatch):
    """A kernel's first cells are recorded without importing prometheus_client; nothing is lost."""
    from prometheus_client import CollectorRegistry

    from sci_ext.core.telemetry import metrics

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(metrics, "_metrics", None)
    monkeypatch.setattr(metrics, "_backlog", [])
    real = metrics.SciMetrics
    monkeypatch.setattr(metrics, "SciMetrics", lambda: real(CollectorRegistry()))  # not the default registry
    seen: list[float] = []
    for duration in (0.5, 1.5, 2.0):
        assert metrics.later(lambda m, d=duration: (seen.append(d), m.cell_duration.observe(d)))
    assert seen == []  # nothing applied, nothing created yet
    m = metrics.get_metrics()
    assert seen == [0.5, 1.5, 2.0]  # in order, once, when created
    assert m.cell_duration._sum.get() == 4.0
    assert not metrics.later(lambda m: seen.append(-1.0))  # they exist: the caller updates now
    assert metrics.get_metrics() is m and seen == [0.5, 1.5, 2.0]


def test_updates_wait_neither_for_another_process_nor_without_bound(monkeypatch, tmp_path):
    from sci_ext.core.telemetry import metrics

    monkeypatch.setattr(metrics, "_metrics", None)
    monkeypatch.setattr(metrics, "_backlog", [])
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the server scrapes the files at once
    assert not metrics.later(lambda m: None)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert all(metrics.later(lambda m: None) for _ in range(metrics.MAX_BACKLOG))
    assert not metrics.later(lambda m: None)
    metrics.drop_backlog()
    assert metrics._backlog == [] and metrics.later(lambda m: None)


def test_the_cache_size_gauge_opens_no_store_for_a_cache_that_does_not_exist(sci_env, tmp_path):
    from types import SimpleNamespace

    from sci_ext.core.cache.layered import _disk
    from sci_ext.core.cache.stats import cache_size_bytes
    from sci_ext.core.config import get_config
    from sci_ext.core.telemetry.subscribe import _cache_size

    missing = tmp_path / "never-cached"
    assert _cache_size(SimpleNamespace(cache=SimpleNamespace(dir=str(missing)))) == 0
    assert not missing.exists() and str(missing) not in _disk  # nothing created, no store opened
    cfg = get_config()
    Path(cfg.cache.dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    assert _cache_size(cfg) == cache_size_bytes() > 0  # an existing cache: the store's own figure
