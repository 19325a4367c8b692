"""Alert rules over the monitor's windows, logged once, exported, shared between processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from clock import Clock
from kernel_harness import REPO
from telemetry_fixtures import sample

from sci_ext.core.telemetry.alerts import AlertMonitor, active_alerts, alerts_dir


@pytest.fixture
def monitor(telemetry):
    clock = Clock(1_000_000.0)
    mon = AlertMonitor(clock=clock)
    mon.clock_obj = clock  # type: ignore[attr-defined]
    yield mon
    mon.stop()


def names(alerts):
    return [a.name for a in alerts]


def test_errors_and_slow_cells_alone_do_not_alert(monitor):
    """The quickstart's deliberate errors, a 3 s cell, %sci_dashboard's start: no alert."""
    for i in range(50):
        monitor.note_run(3.0)
        monitor.note_error("permanent")  # FileNotFoundError, ValueError: the researcher's own bug
        monitor.cell_started(f"c{i}", "new cell")
        monitor.clock_obj.now += 3
        monitor.cell_finished(f"c{i}")
    monitor.note_sample(100.0, 10.0)  # a machine that computes
    monitor.clock_obj.now += 600
    assert names(monitor.evaluate()) == []


def test_external_calls_failing_needs_three_and_a_minute(monitor):
    monitor.note_error("transient")
    monitor.note_error("timeout")
    assert names(monitor.evaluate()) == []  # 2 < 3
    monitor.note_error("rate_limit")
    assert names(monitor.evaluate()) == []  # pending: for 1 min
    monitor.clock_obj.now += 59
    assert names(monitor.evaluate()) == []
    monitor.clock_obj.now += 1
    active = monitor.evaluate()
    assert names(active) == ["ExternalCallsFailing"] and "3 external calls failed" in active[0].summary
    monitor.note_error("transient")
    monitor.clock_obj.now += 5
    active = monitor.evaluate()
    assert "4 external calls failed" in active[0].summary  # the summary follows while it fires
    monitor.clock_obj.now += 300  # the window moves on
    assert names(monitor.evaluate()) == []


def test_memory_near_limit_must_hold_two_minutes(monitor):
    monitor.note_memory({"percent": 95.0, "limit_source": "cgroup"})
    assert names(monitor.evaluate()) == []
    monitor.clock_obj.now += 119
    monitor.note_memory({"percent": 91.0, "limit_source": "cgroup"})
    assert names(monitor.evaluate()) == []
    monitor.clock_obj.now += 1
    active = monitor.evaluate()
    assert names(active) == ["KernelMemoryNearLimit"] and "cgroup limit" in active[0].summary
    monitor.note_memory({"percent": 50.0, "limit_source": "cgroup"})  # one low sample clears it
    assert names(monitor.evaluate()) == []


def test_disk_nearly_full_after_five_minutes(monitor):
    monitor.note_check("disk", "degraded", "0.5 GiB free of 100.0 GiB")
    assert names(monitor.evaluate()) == []  # pending from this evaluation on, as in Prometheus
    monitor.clock_obj.now += 299
    assert names(monitor.evaluate()) == []
    monitor.clock_obj.now += 1
    active = monitor.evaluate()
    assert names(active) == ["DiskNearlyFull"] and "0.5 GiB free" in active[0].summary
    monitor.note_check("disk", "ok", "50 GiB free")
    assert names(monitor.evaluate()) == []


def test_llm_budget_at_80_percent(monitor):
    monitor.note_budgets([{"budget": "paper", "spent_usd": 15.9, "limit_usd": 20.0, "share": 0.795}])
    assert names(monitor.evaluate()) == []
    monitor.note_budgets([{"budget": "paper", "spent_usd": 16.0, "limit_usd": 20.0, "share": 0.8}])
    active = monitor.evaluate()
    assert names(active) == ["LLMBudgetNearlySpent"] and "$16.00 of $20.00" in active[0].summary


def test_a_cell_far_longer_than_its_own_history(monitor):
    for i in range(3):  # a cell that usually takes 10 s
        monitor.cell_started(f"r{i}", "train")
        monitor.clock_obj.now += 10
        monitor.cell_finished(f"r{i}")
    monitor.cell_started("long", "train")
    monitor.cell_started("other", "fresh cell")  # no history: never alerts
    monitor.clock_obj.now += 69  # 6.9x, but only 59 s past its usual
    assert names(monitor.evaluate()) == []
    monitor.clock_obj.now += 1
    active = monitor.evaluate()
    assert names(active) == ["CellRunningLong"] and "7x its usual 10 s" in active[0].summary
    monitor.clock_obj.now += 60
    assert "13x" in monitor.evaluate()[0].summary  # still current while it fires
    monitor.cell_finished("long")
    assert names(monitor.evaluate()) == []


def test_endpoint_slow_for_five_minutes(monitor):
    for _ in range(20):
        monitor.note_request("GET StatusHandler", 0.05)
    assert names(monitor.evaluate()) == []
    for _ in range(20):
        monitor.note_request("GET KernelHandler", 2.5)
    assert names(monitor.evaluate()) == []  # pending: for 5 min
    monitor.clock_obj.now += 300
    for _ in range(20):
        monitor.note_request("GET KernelHandler", 2.5)
    active = monitor.evaluate()
    assert names(active) == ["EndpointSlow"] and "GET KernelHandler" in active[0].summary


def test_auth_failures_per_minute(monitor):
    for _ in range(10):
        monitor.note_auth_failure()
    assert names(monitor.evaluate()) == []
    monitor.note_auth_failure()
    assert names(monitor.evaluate()) == ["AuthFailures"]
    monitor.clock_obj.now += 61
    assert names(monitor.evaluate()) == []


def test_check_failing_for_over_a_minute(monitor):
    monitor.note_check("cache_dir", "failing")
    monitor.clock_obj.now += 30
    monitor.note_check("cache_dir", "failing")
    assert names(monitor.evaluate()) == []
    monitor.clock_obj.now += 31
    active = monitor.evaluate()
    assert names(active) == ["HealthCheckFailing"] and "cache_dir" in active[0].summary
    monitor.note_check("cache_dir", "ok")
    assert names(monitor.evaluate()) == []


def test_thresholds_come_from_config(monitor):
    from sci_ext.core.config import get_config_manager

    get_config_manager().set("monitoring.auth_failures_per_minute", 2)
    for _ in range(3):
        monitor.note_auth_failure()
    assert names(monitor.evaluate()) == ["AuthFailures"]


def test_logged_once_at_start_and_end_and_exported(monitor, caplog):
    caplog.set_level("INFO", logger="sci_ext.alerts")
    for _ in range(11):
        monitor.note_auth_failure()
    for _ in range(3):
        monitor.evaluate()
    assert sample("sci_alerts_active", alert="AuthFailures") == 1
    monitor.clock_obj.now += 61
    monitor.evaluate()
    monitor.evaluate()
    msgs = [r.getMessage() for r in caplog.records if r.name == "sci_ext.alerts"]
    assert len(msgs) == 2
    assert (
        msgs[0].startswith("alert AuthFailures started: 11 failed API-key attempts")
        and msgs[1] == "alert AuthFailures ended"
    )
    assert sample("sci_alerts_active", alert="AuthFailures") == 0


def test_the_background_thread_evaluates_without_the_caller(telemetry):
    mon = AlertMonitor()
    try:
        for _ in range(12):
            mon.note_auth_failure()
        mon.start(interval=0.05)
        deadline = time.monotonic() + 10
        while "AuthFailures" not in mon.active and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "AuthFailures" in mon.active and mon.running
    finally:
        mon.stop()
    assert not mon.running


OTHER = textwrap.dedent(
    """
    import sys, time
    from sci_ext.core.telemetry.alerts import AlertMonitor
    mon = AlertMonitor()
    for _ in range(20):
        mon.note_auth_failure()
    mon.evaluate()
    print("ready", flush=True)
    sys.stdin.readline()
    """
)


def test_alerts_of_other_live_processes_are_visible(telemetry):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", OTHER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        published = alerts_dir() / f"{proc.pid}.json"
        assert json.loads(published.read_text())[0]["name"] == "AuthFailures"
        assert [a["name"] for a in active_alerts()] == ["AuthFailures"]
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert active_alerts() == []  # the process is gone: its alerts too
    assert not published.exists()
