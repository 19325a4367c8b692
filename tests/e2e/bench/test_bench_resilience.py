"""Smoke test of benchmarks/bench_resilience.py: it runs and prints its ratio lines."""

from __future__ import annotations

import pytest
from bench_support import run_benchmark

pytestmark = pytest.mark.kernel


def test_bench_resilience_quick_prints_ratios():
    text = run_benchmark("bench_resilience.py")
    for line in (
        "ratio success-path overhead retry_with_backoff/tenacity:",
        "ratio retry-path time retry_with_backoff/tenacity:",
        "ratio %%guarded cell / plain cell:",
        "ratio %%guarded cell / plain cell, notebook run:",
        "ratio %%guarded cell / no-op cell magic:",
    ):
        assert line in text, text
    assert "ratio closed-breaker overhead sci_ext(disk)/sci_ext(memory):" in text, text
    # pybreaker comes with the `bench` extra, which the README's commands install.
    assert "ratio closed-breaker overhead sci_ext(memory)/pybreaker:" in text, text
    value = float(text.split("retry_with_backoff/tenacity:")[1].split()[0])
    assert value > 0
