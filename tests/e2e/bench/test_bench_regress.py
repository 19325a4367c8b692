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
    assert "no longer reported" in problems[-1]
    problems = bench_regress.compare(baseline, {"a": 1.2, "b": 0.8, "c": 0.5, "gone": 3.0}, 0.25)
    assert [p.split(":")[0] for p in problems] == ["gone"]


def test_the_better_of_baseline_and_goal_is_the_reference():
    # A baseline recorded on a bad day (above the goal) does not become the new normal.
    bad_day = {"r": {"value": 1.7, "goal": 1.5, "better": "lower"}}
    assert bench_regress.compare(bad_day, {"r": 1.8}, 0.1)  # within 25 % of 1.7, not within 10 % of 1.5
    assert not bench_regress.compare(bad_day, {"r": 1.6}, 0.1)
    # A baseline better than the goal is kept: a slide back towards the goal is caught.
    good_day = {"r": {"value": 0.10, "goal": 0.25, "better": "lower"}}
    assert bench_regress.compare(good_day, {"r": 0.2}, 0.25)
    higher = {"r": {"value": 0.9, "goal": 0.8, "better": "higher"}}
    assert bench_regress.reference(higher["r"]) == 0.9
    assert bench_regress.compare(higher, {"r": 0.6}, 0.25) and not bench_regress.compare(higher, {"r": 0.7}, 0.25)


def test_table_shows_distance_to_goal_and_missing_ratios():
    baseline = {
        "x.py: met": {"value": 0.2, "goal": 0.25, "better": "lower"},
        "x.py: far": {"value": 2.0, "goal": 1.0, "better": "lower"},
        "x.py: free": {"value": 3.0, "goal": None, "better": "higher"},
        "x.py: gone": {"value": 1.0, "goal": 1.0, "better": "lower"},
    }
    now = {"x.py: met": 0.2, "x.py: far": 1.5, "x.py: free": 3.1, "x.py: new": 9.0}
    rows = {line.split()[0] + " " + line.split()[1]: line for line in bench_regress.table(baseline, now)[1:]}
    assert rows["x.py: met"].split()[-2:] == ["-20%", "met"]
    assert rows["x.py: far"].split()[-3:] == ["1.0", "+50%", "not"] or rows["x.py: far"].endswith("not met")
    assert "+50%" in rows["x.py: far"]
    assert rows["x.py: free"].endswith("no goal")
    assert rows["x.py: gone"].endswith("MISSING") and rows["x.py: new"].endswith("new")
    markdown = bench_regress.table(baseline, now, markdown=True)
    assert markdown[0].startswith("| ratio |") and len(markdown) == 2 + 5


def test_thousands_separators_are_read():
    assert bench_regress.parse_ratios("ratio get: KDF-per-access / sci_ext = 12,345x") == {
        "get: KDF-per-access / sci_ext": 12345.0
    }


def test_the_committed_baseline_names_existing_scripts():
    config = json.loads((REPO / "benchmarks" / "baseline.json").read_text())
    assert config["scripts"] and config["ratios"]
    for script in config["scripts"]:
        assert (REPO / "benchmarks" / script).is_file(), script
    for label, entry in config["ratios"].items():
        assert label.split(": ")[0] in config["scripts"] and entry["better"] in ("lower", "higher")
        assert "goal" in entry, f"{label}: every ratio states its goal (null: none)"


def test_the_bench_extra_holds_every_peer_the_benchmarks_import():
    """A peer missing from `pip install 'sci_ext[bench]'` would make its ratios fail (never vanish)."""
    import re

    # The `bench = [...]` line of [project.optional-dependencies] (tomllib is Python 3.11+).
    line = re.search(r"^bench = \[(.*)\]$", (REPO / "pyproject.toml").read_text(), re.M)
    assert line, "pyproject.toml has no bench extra"
    extra = re.findall(r'"([^"]+)"', line.group(1))
    names = {re.split(r"[<>=!~ \[]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in extra}
    peers = {"pybreaker", "tenacity", "joblib", "xxhash", "prometheus-client"}
    assert peers <= names, peers - names
    sources = "\n".join(p.read_text() for p in (REPO / "benchmarks").glob("bench_*.py"))
    for module in ("pybreaker", "tenacity", "joblib", "xxhash", "prometheus_client"):
        assert re.search(rf"^\s*(import|from) {module}\b", sources, re.M), f"no benchmark imports {module}"
