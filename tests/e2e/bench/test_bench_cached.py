"""The ``%%cached`` benchmark runs and prints its three ratios (sizes from ``--quick``)."""

from __future__ import annotations

import re

from bench_support import run_benchmark


def test_bench_cached_quick_prints_the_ratios():
    out = run_benchmark("bench_cached.py")
    assert re.search(r"ratio sci_ext/joblib = \d+\.\d+x", out)
    assert re.search(r"hit overhead = -?\d+\.\d+ ms", out)
    assert re.search(r"ratio sci_ext/xxh3 = \d+\.\d+x", out)
    # The first hit after a restart, in two venvs, and its slope over the number of distributions.
    assert len(re.findall(r"small cell \d+\.\d+ ms .* ratio sci_ext/joblib = \d+\.\d+x", out)) == 2, out
    assert re.search(r"slope: small cell [+-]\d+\.\d+ ms per 100 distributions", out), out
