"""The ``%%cached`` benchmark runs and prints its three ratios (sizes from ``--quick``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from kernel_harness import REPO


def test_bench_cached_quick_prints_the_ratios():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_cached.py"), "--quick"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert re.search(r"ratio sci_ext/joblib = \d+\.\d+x", out)
    assert re.search(r"hit overhead = -?\d+\.\d+ ms", out)
    assert re.search(r"ratio sci_ext/xxh3 = \d+\.\d+x", out)
