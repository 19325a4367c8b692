"""Smoke test of benchmarks/bench_differential.py on its fastest corpus notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_support import benchmark_process

SCRIPT = "bench_differential.py"

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def test_bench_prints_the_goal_figures_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = benchmark_process(SCRIPT, "--only", "pdsh_errors", "--parallel", "--json", str(out), timeout=240)
    for figure in (
        "stale hits",
        "misses differing from plain",
        "errors introduced",
        "misses after restart explained %",
        "hits after restart (deterministic cells) %",
    ):
        assert figure in proc.stdout, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert [nb["name"] for nb in data["notebooks"]] == ["pdsh_errors"]
    # pdsh_errors has failing cells and no state a cache could get wrong: an introduced error is a regression
    assert data["figures"]["errors introduced"] == 0, proc.stdout
    missed = "GOAL MISSED" in proc.stdout
    assert proc.returncode == (1 if missed else 0), proc.stdout + proc.stderr


def test_net_cost_prints_each_notebook_and_the_corpus_ratio() -> None:
    proc = benchmark_process(SCRIPT, "--net-cost", "1", "--only", "pdsh_concat", timeout=240)
    line = next((ln for ln in proc.stdout.splitlines() if "pdsh_concat" in ln and "with" in ln), "")
    with_net, without = (float(part.split()[0]) for part in line.split("with ")[1].split("without "))
    assert with_net > 0 and without > 0, proc.stdout + proc.stderr  # both runs timed their cells
    assert "safety net on the corpus's misses:" in proc.stdout, proc.stdout + proc.stderr
    met = "goal met" in proc.stdout
    assert proc.returncode == (0 if met else 1), proc.stdout + proc.stderr
