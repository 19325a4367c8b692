"""The import benchmark runs and prints its figures and ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_import_quick_prints_ratios():
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_import.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    assert re.search(r"ratio load_ext/import IPython\s*:\s*\d+\.\d+x", out), out
    assert re.search(r"added in a kernel\s*:\s*-?\d+\.\d ms", out), out
