"""%sci_dashboard: the model, the panel in a real kernel, the updater's lifecycle, the terminal form."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sci_ext.kernel.dashboard_model import SERIES, DashboardModel, extract, text_summary

# The module's tests share one kernel, reset before each (tests/conftest.py `kernel`).
pytestmark = pytest.mark.module_kernel

REPO = Path(__file__).resolve().parents[2]

STATUS = {
    "status": "degraded",
    "time": 1_000.0,
    "checks": [{"name": "cpu", "status": "degraded", "detail": "95 %"}, {"name": "disk", "status": "ok"}],
    "resources": {"cpu_percent": 95.0, "memory": {"percent": 40.0, "used_bytes": 2**30, "total_bytes": 2**32}},
    "cells": {"total": 3, "errors": 1, "p95_seconds": 0.25},
    "cache": {"hits": 3, "misses": 1, "hit_ratio": 0.75},
    "retries": {"total": 2},
    "breakers": [{"name": "openai", "state": "open", "failures": 5, "next_attempt_at": 1_060.0}],
    "errors": [{"time": 999.0, "where": "guarded ask", "error_type": "HTTPError", "correlation_id": "c0ffee"}],
    "alerts": [{"name": "HighCpu", "severity": "warning", "summary": "cpu 95 % > 90 %"}],
    "llm": {"calls": 4, "cost_usd": 0.42},
}


def test_extract_reads_every_series_and_tolerates_gaps():
    assert extract(STATUS) == {
        "cpu_percent": 95.0,
        "memory_percent": 40.0,
        "cell_p95_seconds": 0.25,
        "cache_hit_ratio": 75.0,  # percent, as the panel shows it
        "retries": 2.0,
        "llm_cost_usd": 0.42,
    }
    assert extract({"llm": None, "cache": {"hit_ratio": None}, "retries": {"total": True}}) == dict.fromkeys(SERIES)


def test_model_keeps_a_bounded_window():
    model = DashboardModel(window_seconds=10)
    for t in range(100):
        model.add(STATUS, now=float(t))
    assert len(model.times) == 11 and model.times[0] == 89.0
    assert all(len(v) == 11 for v in model.series.values())
    assert model.samples == 100 and "llm_cost_usd" in model.visible_series()
    tiny = DashboardModel(window_seconds=1e9)
    for t in range(5000):
        tiny.add({}, now=float(t))
    assert len(tiny.times) == 3600 and tiny.visible_series() == []


def test_text_summary_fits_one_screen_and_names_what_matters():
    text = text_summary(STATUS, width=100)
    lines = text.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 100 for line in lines)
    for expected in ("DEGRADED", "cpu=degraded", "openai=open", "HighCpu", "c0ffee", "$0.4200", "ratio 75%"):
        assert expected in text, expected


THREADS = "import threading; print(sum(t.name == 'sci_ext-dashboard' and t.is_alive() for t in threading.enumerate()))"
DASH = "get_ipython().magics_manager.registry['DashboardMagics'].dashboard"


def wait_for(kernel, code: str, expected: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = kernel.run(code).check().stdout.strip()
        if seen == expected:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{code!r}: expected {expected!r}, last saw {seen!r}")


@pytest.mark.kernel
def test_dashboard_in_a_real_kernel_updates_and_stops(kernel):
    res = kernel.run("%sci_dashboard --interval 0.2 --window 1").check()
    views = [d for d in res.displays if "application/vnd.jupyter.widget-view+json" in d]
    assert len(views) == 1  # the panel; the updater thread adds the figure to its Output widget
    first = int(kernel.run(f"print({DASH}.model.samples)").check().stdout)
    # Other cells run while it updates, and the samples keep coming.
    kernel.run("import time; time.sleep(1.0); x = sum(range(10**6))").check()
    later = int(kernel.run(f"print({DASH}.model.samples)").check().stdout)
    assert later >= first + 3
    # The figure holds the bounded series it was given.
    wait_for(kernel, f"print({DASH}.panel.figure is not None)", "True")
    # The updater thread draws after it samples: between the two the model is one sample ahead.
    wait_for(kernel, f"d = {DASH}; print(len(d.panel.figure.data[0].x) == len(d.model.times) > 0)", "True")
    # A second call reuses the one updater.
    kernel.run("%sci_dashboard --interval 0.3").check()
    assert kernel.run(THREADS).check().stdout.strip() == "1"
    assert kernel.run(f"print({DASH}.interval)").check().stdout.strip() == "0.3"
    res = kernel.run("%sci_dashboard --stop").check()
    assert "stopped after" in res.stdout
    wait_for(kernel, THREADS, "0")
    assert "not running" in kernel.run("%sci_dashboard --stop").check().stdout


@pytest.mark.kernel
def test_closing_the_widget_or_unloading_stops_the_updater(kernel):
    kernel.run("%sci_dashboard --interval 0.2").check()
    wait_for(kernel, THREADS, "1")
    kernel.run(f"{DASH}.panel.box.close()").check()
    wait_for(kernel, THREADS, "0")
    kernel.run("%sci_dashboard --interval 0.2").check()
    wait_for(kernel, THREADS, "1")
    kernel.run("%unload_ext sci_ext").check()
    wait_for(kernel, THREADS, "0")


@pytest.mark.kernel
@pytest.mark.parametrize("line", ["--interval 0", "--interval nan", "--window -1", "--bogus"])
def test_bad_options_are_one_line_usage_errors(kernel, line):
    res = kernel.run(f"%sci_dashboard {line}")
    assert not res.ok or "UsageError" in res.stderr
    assert kernel.run(THREADS).check().stdout.strip() == "0"


def test_terminal_ipython_prints_a_text_summary(sci_env):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", "--quick"],
        input="%load_ext sci_ext\n%sci_dashboard\nexit\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "sci_ext dashboard  status:" in res.stdout and "cache hits" in res.stdout
    assert "widget" not in res.stdout.lower()
