"""The import benchmark runs and prints its figures and ratios."""

from __future__ import annotations

import re

from bench_support import run_benchmark


def test_bench_import_quick_prints_ratios():
    out = run_benchmark("bench_import.py", timeout=240)
    assert re.search(r"ratio load_ext/import IPython\s*:\s*\d+\.\d+x", out), out
    assert re.search(r"added in a kernel\s*:\s*-?\d+\.\d ms", out), out
