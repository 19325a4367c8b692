"""scripts/bench_regress.py: the ratio lines of every benchmark are read, regressions caught."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("bench_regress", REPO / "scripts" / "bench_regress.py")
assert spec and spec.loader
bench_regress = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_regress)


def test_parses_every_ratio_format_the_benchmarks_print():
    out = (
        "    ratio sci_ext/joblib = 0.019x (goal <= 0.25x)\n"
        "ratio load_ext/import IPython       :    0.40x\n"
        "ratio closed-breaker overhead sci_ext(memory)/pybreaker: 0.300\n"
        "    hit overhead = 0.630 ms (goal <= 2 ms); ratio hit/plain = 1.20x\n"
        "no ratio here: 5\n"
    )
    assert bench_regress.parse_ratios(out) == {
        "sci_ext/joblib": 0.019,
        "load_ext/import IPython": 0.40,
        "closed-breaker overhead sci_ext(memory)/pybreaker": 0.300,
        "hit/plain": 1.20,
    }


def test_compare_flags_regressions_beyond_tolerance_both_ways():
    baseline = {
        "a": {"value": 1.0, "better": "lower"},
        "b": {"value": 1.0, "better": "higher"},
        "c": {"value": 1.0, "better": "lower"},
        "gone": {"value": 1.0},
    }
    problems = bench_regress.compare(baseline, {"a": 1.30, "b": 0.70, "c": 1.2}, 0.25)
    assert [p.split(":")[0] for p in problems] == ["a", "b", "gone"]
    assert bench_regress.compare(baseline, {"a": 1.2, "b": 0.8, "c": 0.5, "gone": 3.0}, 0.25) == [
        "gone: 3.000 vs baseline 1.000 (lower is better)"
    ]


def test_the_committed_baseline_names_existing_scripts():
    config = json.loads((REPO / "benchmarks" / "baseline.json").read_text())
    assert config["scripts"] and config["ratios"]
    for script in config["scripts"]:
        assert (REPO / "benchmarks" / script).is_file(), script
    for label, entry in config["ratios"].items():
        assert label.split(": ")[0] in config["scripts"] and entry["better"] in ("lower", "higher")
