"""Alert rules over the monitor's windows, logged once, exported, shared between processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from kernel_harness import REPO
from telemetry_fixtures import sample

from sci_ext.core.telemetry.alerts import AlertMonitor, active_alerts, alerts_dir


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monitor(telemetry):
    clock = Clock()
    mon = AlertMonitor(clock=clock)
    mon.clock_obj = clock  # type: ignore[attr-defined]
    yield mon
    mon.stop()


def names(alerts):
    return [a.name for a in alerts]


def test_error_rate_over_the_window(monitor):
    for _ in range(200):
        monitor.note_run(0.01)
    monitor.note_error()
    monitor.note_error()
    assert names(monitor.evaluate()) == []  # 1 % is not over 1 %
    monitor.note_error()
    active = monitor.evaluate()
    assert names(active) == ["HighErrorRate"]
    assert active[0].value == pytest.approx(0.015) and "1.5 %" in active[0].summary
    monitor.clock_obj.now += 301  # the window moves on
    assert names(monitor.evaluate()) == []


def test_latency_p95(monitor):
    for _ in range(90):
        monitor.note_run(0.1)
    for _ in range(10):
        monitor.note_run(3.0)
    active = monitor.evaluate()
    assert names(active) == ["HighLatency"] and active[0].value > 1


def test_cpu_and_memory_must_stay_high_for_the_window(monitor):
    monitor.note_sample(95, 50)
    monitor.clock_obj.now += 200
    monitor.note_sample(97, 95)
    assert names(monitor.evaluate()) == []
    monitor.clock_obj.now += 101
    monitor.note_sample(96, 95)
    assert names(monitor.evaluate()) == ["HighCPU"]
    monitor.note_sample(20, 95)  # one low sample clears it
    assert names(monitor.evaluate()) == []


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
    assert msgs[0].startswith("alert AuthFailures started: 11 auth failures") and msgs[1] == "alert AuthFailures ended"
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
