"""Smoke test of benchmarks/bench_telemetry.py: it runs and prints its ratio lines."""

from __future__ import annotations

import pytest
from bench_support import run_benchmark

pytestmark = pytest.mark.kernel


def test_bench_telemetry_quick_prints_ratios():
    text = run_benchmark("bench_telemetry.py")
    for line in (
        "added per cell (hooks timed in-kernel)",
        "ratio performance_monitor/Histogram.time :",
        "ratio performance_monitor/bare",
        "ratio cell on/off (round trip)",
        "ratio load_ext cell hooks/plain cell",
    ):
        assert line in text, text
    assert float(text.split("ratio performance_monitor/Histogram.time :")[1].split("x")[0]) > 0
    assert float(text.split("added per cell (hooks timed in-kernel)   :")[1].split("ms")[0]) > 0
    assert float(text.split("all %load_ext cell hooks, in-kernel (CPU):")[1].split("ms")[0]) > 0
