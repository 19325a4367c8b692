"""Run the benchmarks and compare their ratios with their goals and ``benchmarks/baseline.json``.

Every benchmark prints ``ratio LABEL: VALUE`` (or ``ratio LABEL = VALUEx``) lines: a
figure of sci_ext divided by the same figure of a peer measured in the same run, so
ratios, unlike wall times, carry from one machine to another.  The baseline holds, per
ratio, which way is ``better``, the ``goal`` (``null``: none stated) and the last
recorded ``value``.  This script prints one table row per ratio (value, baseline,
goal, distance to the goal) and fails (exit 1) when

* a ratio is worse than the *better* of its baseline and its goal by more than
  ``--tolerance`` (25 %; ``floor`` is an absolute slack for ratios near zero), so a
  baseline recorded on a bad day does not become the new normal;
* a ratio of the baseline is not reported any more (a peer missing from the
  ``bench`` extra is an error of the benchmark, never a silently skipped line);
* a benchmark fails.

    python scripts/bench_regress.py                 # compare (what CI runs)
    python scripts/bench_regress.py --quick         # the same with small sizes (smoke)
    python scripts/bench_regress.py --update        # record the figures as the new values
    python scripts/bench_regress.py --markdown      # the table as markdown, to paste

Run it on a quiet machine: ``nice``, nothing else running, best-of-N inside the benchmarks
(see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "benchmarks" / "baseline.json"
RATIO = re.compile(
    r"(?:^|;)\s*ratio\s+(?P<label>[^=;\n]+?)\s*[:=]\s*(?P<value>[0-9][0-9,]*(?:\.[0-9]+)?)x?", re.MULTILINE
)


def parse_ratios(text: str) -> dict[str, float]:
    """Every ``ratio LABEL: VALUE`` in a benchmark's output (thousands separators allowed)."""
    return {m.group("label").strip(): float(m.group("value").replace(",", "")) for m in RATIO.finditer(text)}


def run(script: str, args: list[str]) -> dict[str, float]:
    """Run one benchmark (bytecode caches on, as users have them); its ratios by full label."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # benchmark with bytecode caches, as users have them
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"{script} failed ({res.returncode}): {res.stderr.strip().splitlines()[-3:]}")
    return {f"{script}: {label}": value for label, value in parse_ratios(res.stdout).items()}


def _lower_is_better(entry: dict[str, Any]) -> bool:
    return entry.get("better", "lower") == "lower"


def reference(entry: dict[str, Any]) -> float:
    """What a new value is held against: the better of the recorded value and the goal."""
    base = float(entry["value"])
    goal = entry.get("goal")
    if goal is None:
        return base
    return min(base, float(goal)) if _lower_is_better(entry) else max(base, float(goal))


def distance(entry: dict[str, Any], value: float) -> float | None:
    """How far ``value`` is from the goal, as a fraction of the goal: <= 0 means the goal is met."""
    goal = entry.get("goal")
    if goal is None or float(goal) == 0:
        return None
    goal = float(goal)
    return (value - goal) / goal if _lower_is_better(entry) else (goal - value) / goal


def compare(baseline: dict[str, dict[str, Any]], now: dict[str, float], tolerance: float) -> list[str]:
    """Lines for every ratio worse than the better of baseline and goal by more than ``tolerance``."""
    problems = []
    for label, entry in baseline.items():
        if label not in now:
            problems.append(f"{label}: no longer reported (a peer missing from the bench extra?)")
            continue
        ref = reference(entry)
        value = now[label]
        if _lower_is_better(entry):
            worse = value > ref * (1 + tolerance) and value - ref > float(entry.get("floor", 0.0))
        else:
            worse = value < ref * (1 - tolerance)
        if worse:
            problems.append(
                f"{label}: {value:.3f} vs {ref:.3f} (the better of baseline {float(entry['value']):.3f}"
                f" and goal {entry.get('goal')}; {entry.get('better', 'lower')} is better)"
            )
    return problems


def table(baseline: dict[str, dict[str, Any]], now: dict[str, float], markdown: bool = False) -> list[str]:
    """One row per ratio: value now, baseline, goal, distance to the goal, status."""
    rows = [("ratio", "now", "baseline", "goal", "to goal", "status")]
    for label in sorted(set(baseline) | set(now)):
        entry = baseline.get(label, {"better": "lower", "value": math.nan})
        value = now.get(label)
        goal = entry.get("goal")
        sign = "<=" if _lower_is_better(entry) else ">="
        dist = distance(entry, value) if value is not None else None
        if value is None:
            status = "MISSING"
        elif label not in baseline:
            status = "new"
        elif goal is None:
            status = "no goal"
        else:
            status = "met" if dist is not None and dist <= 0 else "not met"
        rows.append((
            label,
            "-" if value is None else f"{value:.3f}",
            "-" if math.isnan(float(entry["value"])) else f"{float(entry['value']):.3f}",
            "-" if goal is None else f"{sign} {goal}",
            "-" if dist is None else f"{dist:+.0%}",
            status,
        ))  # fmt: skip
    if markdown:
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        return out + ["| " + " | ".join(r) + " |" for r in rows[1:]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, compare or update."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the measured ratios as the new values")
    parser.add_argument("--tolerance", type=float, default=0.25)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (smoke run)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--only", nargs="+", metavar="SCRIPT", help="run only these benchmark scripts")
    args = parser.parse_args(argv)
    config = json.loads(BASELINE.read_text()) if BASELINE.exists() else {"scripts": {}, "ratios": {}}
    scripts = {s: a for s, a in config["scripts"].items() if not args.only or s in args.only}
    now: dict[str, float] = {}
    for script, script_args in scripts.items():
        print(f"running {script} ...", flush=True)
        now.update(run(script, [*script_args, *(["--quick"] if args.quick and "--quick" not in script_args else [])]))
    ratios = {k: v for k, v in config["ratios"].items() if k.split(": ")[0] in scripts}
    print("\n".join(table(ratios, now, markdown=args.markdown)))
    if args.update:
        for label, value in now.items():
            entry = config["ratios"].setdefault(label, {"better": "lower", "goal": None})
            entry["value"] = round(value, 4)
        BASELINE.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        print(f"baseline written: {BASELINE}")
        return 0
    problems = compare(ratios, now, args.tolerance)
    for line in problems:
        print(f"REGRESSION {line}")
    print(f"{len(now)} ratios, {len(problems)} regressions (tolerance {args.tolerance:.0%})")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
