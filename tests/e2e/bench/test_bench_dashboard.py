"""Smoke test of benchmarks/bench_dashboard.py: it runs and prints its ratio and CPU lines."""

from __future__ import annotations

import re

import pytest
from bench_support import run_benchmark

pytestmark = pytest.mark.kernel


def test_bench_dashboard_quick_prints_ratio_and_cpu():
    text = run_benchmark("bench_dashboard.py", "--quick")
    ratio = re.search(r"ratio cell latency dashboard on/off: ([0-9.]+)x", text)
    cpu = re.search(r"updater CPU at a [0-9.]+ s interval: ([0-9.]+) % of one core", text)
    assert ratio and cpu, text
    assert float(ratio.group(1)) > 0 and float(cpu.group(1)) > 0
