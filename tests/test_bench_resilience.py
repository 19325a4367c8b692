"""Smoke test of benchmarks/bench_resilience.py: it runs and prints its ratio lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.kernel


def test_bench_resilience_quick_prints_ratios():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_resilience.py"), "--quick"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for line in (
        "ratio success-path overhead retry_with_backoff/tenacity:",
        "ratio retry-path time retry_with_backoff/tenacity:",
        "ratio %%guarded cell / plain cell:",
    ):
        assert line in text, text
    assert "ratio closed-breaker overhead sci_ext(disk)/sci_ext(memory):" in text, text
    assert "ratio closed-breaker overhead sci_ext(memory)/pybreaker:" in text or "pybreaker not installed" in text
    value = float(text.split("retry_with_backoff/tenacity:")[1].split()[0])
    assert value > 0
