"""Smoke test of benchmarks/bench_kernel_start.py: both profiles start kernels, the ratio is printed."""

from __future__ import annotations

import re

import pytest
from bench_support import run_benchmark

pytestmark = pytest.mark.kernel


def test_bench_kernel_start_quick_prints_its_ratio():
    text = run_benchmark("bench_kernel_start.py", "--quick", timeout=300)
    # The script itself fails unless the profile with the extension loaded sci_ext and the other did not.
    match = re.search(r"ratio kernel start to first cell with/without sci_ext: (\d+\.\d+)x", text)
    assert match is not None, text
    assert float(match.group(1)) > 0
