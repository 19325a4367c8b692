"""Smoke test of benchmarks/bench_security.py (figures are printed, never asserted)."""

from __future__ import annotations

from pathlib import Path

from bench_support import run_benchmark


def test_bench_security_quick_prints_ratios(tmp_path: Path) -> None:
    output = run_benchmark("bench_security.py", cwd=tmp_path)
    lines = output.splitlines()
    for prefix in ("unlock (default KDF):", "get after unlock (sci_ext):", "validate_api_key (sci_ext, HMAC):"):
        assert any(line.startswith(prefix) for line in lines), output
    ratios = [line for line in lines if line.startswith("ratio ")]
    assert len(ratios) == 5 and all(line.rstrip().split("=")[1].strip()[0].isdigit() for line in ratios), ratios
    assert "sk-bench-" not in output
