"""Smoke test of benchmarks/bench_security.py (figures are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_security_quick_prints_ratios(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_security.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for prefix in ("unlock (default KDF):", "get after unlock (sci_ext):", "validate_api_key (sci_ext, HMAC):"):
        assert any(line.startswith(prefix) for line in lines), out.stdout
    ratios = [line for line in lines if line.startswith("ratio ")]
    assert len(ratios) == 5 and all(line.rstrip().split("=")[1].strip()[0].isdigit() for line in ratios), ratios
    assert "sk-bench-" not in out.stdout + out.stderr
