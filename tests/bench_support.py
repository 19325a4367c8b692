"""Running a benchmark script the way a user does, for the smoke tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kernel_harness import REPO


def run_quick_benchmark(script: str, cwd: Path | None = None, timeout: float = 300) -> str:
    """Run ``benchmarks/<script> --quick`` with this checkout importable; its stdout.

    Fails with the script's stderr if it exits non-zero.
    """
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--quick"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=cwd,
        timeout=timeout,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout + ("" if not res.stderr else "\n[stderr]\n" + res.stderr)
