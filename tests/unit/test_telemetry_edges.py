"""Edges of telemetry: the monitor's tick, cgroup memory, GPUs (NVML faked), quantiles, odd files."""

from __future__ import annotations

import json
import os
import sys
import types

import pytest
from telemetry_fixtures import sample

from sci_ext.core import context


def test_monitor_tick_samples_sets_gauges_and_runs_checks_when_due(telemetry):
    from sci_ext.core.telemetry import health, subscribe
    from sci_ext.core.telemetry.alerts import get_monitor

    subscribe._last_check_run = 0.0
    subscribe._tick()
    assert get_monitor().memory is not None and get_monitor().budgets == []  # no LLM budget configured
    assert 0 <= sample("sci_memory_percent") <= 100 and sample("sci_cell_overrun_ratio") == 0
    report = health.last_report()
    assert report is not None and {c.name for c in report.checks} >= {"cache_dir", "disk"}
    again = health.last_report()
    subscribe._tick()  # not due again yet: the same report
    assert health.last_report() is again


def test_install_starts_and_uninstall_stops_the_monitor(sci_env):
    from sci_ext.core.telemetry import alerts, subscribe

    alerts._monitor = None
    try:
        subscribe.install(interval=0.05)
        subscribe.install(interval=0.05)  # idempotent
        mon = alerts.get_monitor()
        assert mon.running and mon.on_tick.count(subscribe._tick) == 1
    finally:
        subscribe.uninstall()
    assert not mon.running and subscribe._tick not in mon.on_tick and not subscribe.installed()
    alerts._monitor = None


def test_memory_from_a_cgroup_limit(tmp_path, monkeypatch):
    from sci_ext.core.telemetry import resources

    (tmp_path / "memory.max").write_text("1073741824\n")
    (tmp_path / "memory.current").write_text("536870912\n")
    monkeypatch.setattr(resources, "_CGROUP", tmp_path)
    mem = resources.memory_info()
    assert mem == {"used_bytes": 536870912, "total_bytes": 1073741824, "percent": 50.0, "limit_source": "cgroup"}
    (tmp_path / "memory.max").write_text("max\n")
    assert resources.memory_info()["limit_source"] == "host"


def test_gpus_from_nvml(monkeypatch):
    """NVML cannot run here (no GPU): a stand-in module with NVML's API."""
    from sci_ext.core.telemetry import resources

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"NVIDIA A100",
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=35),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=1, total=2),
        nvmlDeviceGetTemperature=lambda h, sensor: 60,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(resources, "gpu_present", lambda: True)  # MOCK: no NVIDIA device here
    assert resources.gpu_info() == [
        {"index": 0, "name": "NVIDIA A100", "utilization_percent": 35.0, "memory_used_bytes": 1,
         "memory_total_bytes": 2, "temperature_c": 60}
    ]  # fmt: skip

    def broken() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setattr(fake, "nvmlInit", broken)
    assert resources.gpu_info() == []
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert resources.gpu_info() == []


def test_quantiles_like_prometheus():
    from sci_ext.core.telemetry.status import _quantile

    assert _quantile([], 0.5) is None
    assert _quantile([(1.0, 0), (float("inf"), 0)], 0.5) is None
    assert _quantile([(1.0, 10), (2.0, 20), (float("inf"), 20)], 0.5) == 1.0
    assert _quantile([(1.0, 0), (2.0, 10), (float("inf"), 10)], 0.5) == 1.5
    assert _quantile([(1.0, 5), (float("inf"), 10)], 0.95) == 1.0  # in the +Inf bucket: the last bound


def test_context_extras_become_fields(telemetry):
    from sci_ext.core.telemetry import get_logger, log_path

    with context.using(correlation_id="feed", step="train"):
        get_logger("edge").info("with extras")
    lines = [json.loads(x) for x in log_path().read_text().splitlines() if x.startswith("{")]
    assert lines[-1]["step"] == "train" and lines[-1]["msg"] == "with extras"


def test_odd_files_in_the_alerts_dir_are_skipped(telemetry):
    from sci_ext.core.telemetry.alerts import active_alerts, alerts_dir

    d = alerts_dir()
    d.mkdir(parents=True, exist_ok=True)
    (d / "notapid.json").write_text("[]")
    (d / f"{os.getppid()}.json").write_text("{broken")
    (d / "1.json").write_text(json.dumps([{"name": "AuthFailures", "since": 5.0}, "junk", {"no": "name"}]))
    (d / "999999999.json").write_text("[]")  # a pid that does not exist
    assert [a["name"] for a in active_alerts()] == (["AuthFailures"] if os.path.exists("/proc/1") else [])
    assert not (d / "999999999.json").exists()


def test_status_parts_fail_soft(telemetry, monkeypatch, caplog):
    from sci_ext.core.telemetry import status

    def boom(*a, **k):
        raise OSError("cannot read")

    monkeypatch.setattr(status, "breakers_status", boom)
    result = status.collect_status(run_checks=False)
    assert result["breakers"] == [] and "breakers unavailable: cannot read" in caplog.text


@pytest.mark.redis
def test_breakers_listed_from_redis(sci_env, redis_server):
    from sci_ext.core.config import get_config_manager
    from sci_ext.core.resilience import circuit_breaker
    from sci_ext.core.telemetry.status import breakers_status

    get_config_manager().set("breaker.redis_url", redis_server.url)
    circuit_breaker("remote-llm", fail_max=1).trip()
    assert [b["name"] for b in breakers_status()] == ["remote-llm"]
    assert breakers_status()[0]["state"] == "open"
