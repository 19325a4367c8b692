"""Running a benchmark script the way a user does, for the smoke tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kernel_harness import REPO


def benchmark_process(
    script: str, *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python benchmarks/<script> ARGS`` with this checkout importable, whatever its exit status."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def run_benchmark(script: str, size: str = "--smoke", cwd: Path | None = None, timeout: float = 300) -> str:
    """Run ``benchmarks/<script> --smoke`` (or another ``size``); its stdout (and stderr, if any).

    ``--smoke`` is one pass at the smallest sizes: the smoke tests check that each benchmark runs
    and prints every figure and ratio line, not what the figures are (``--quick`` and the full
    sizes measure; ``scripts/bench_regress.py`` records ``--quick``; ``benchmarks/sizes.py``).
    Fails with the script's stderr if it exits non-zero.
    """
    res = benchmark_process(script, size, cwd=cwd, timeout=timeout)
    assert res.returncode == 0, res.stderr
    return res.stdout + ("" if not res.stderr else "\n[stderr]\n" + res.stderr)
