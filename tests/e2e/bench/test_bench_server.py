"""Smoke test of benchmarks/bench_server.py (figures are printed, never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_support import run_benchmark


@pytest.mark.slow
def test_bench_server_quick_prints_ratios(tmp_path: Path) -> None:
    output = run_benchmark("bench_server.py", cwd=tmp_path, timeout=600)
    lines = output.splitlines()
    for prefix in ("/metrics (jupyter_server, peer):", "/sci/metrics:", "/sci/health:"):
        line = next((x for x in lines if x.startswith(prefix)), None)
        assert line is not None, output
        assert "errors 0," in line, line  # every request answered 200
    ratios = [x for x in lines if x.startswith("ratio ")]
    assert len(ratios) == 4 and all(x.split("=")[1].strip()[0].isdigit() for x in ratios), ratios
    assert any("live kernels" in x for x in lines) and any("after the server's compaction" in x for x in lines)
