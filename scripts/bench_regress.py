"""Run the benchmarks and compare their ratios with ``benchmarks/baseline.json``.

Every benchmark prints ``ratio LABEL: VALUE`` (or ``ratio LABEL = VALUEx``) lines: a
figure of sci_ext divided by the same figure of a peer measured in the same run, so
ratios, unlike wall times, carry from one machine to another.  This script collects
them and fails (exit 1) when one is worse than its baseline by more than
``--tolerance`` (25 %).  ``better`` in the baseline says which way is better.

    python scripts/bench_regress.py                 # compare (what CI runs)
    python scripts/bench_regress.py --update        # write the figures as the new baseline
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "benchmarks" / "baseline.json"
RATIO = re.compile(r"(?:^|;)\s*ratio\s+(?P<label>[^:=;]+?)\s*[:=]\s*(?P<value>[0-9]+(?:\.[0-9]+)?)x?", re.MULTILINE)


def parse_ratios(text: str) -> dict[str, float]:
    """Every ``ratio LABEL: VALUE`` in a benchmark's output."""
    return {m.group("label").strip(): float(m.group("value")) for m in RATIO.finditer(text)}


def run(script: str, args: list[str]) -> dict[str, float]:
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
        raise SystemExit(f"{script} failed ({res.returncode}): {res.stderr.strip().splitlines()[-1:]}")
    return {f"{script}: {label}": value for label, value in parse_ratios(res.stdout).items()}


def compare(baseline: dict[str, dict[str, object]], now: dict[str, float], tolerance: float) -> list[str]:
    """Lines for every ratio worse than its baseline by more than ``tolerance``."""
    problems = []
    for label, entry in baseline.items():
        if label not in now:
            problems.append(f"{label}: no longer reported")
            continue
        base = float(entry["value"])  # type: ignore[arg-type]
        value = now[label]
        if entry.get("better", "lower") == "lower":
            worse = value > base * (1 + tolerance) and value - base > float(entry.get("floor", 0.0))  # type: ignore[arg-type]
        else:
            worse = value < base * (1 - tolerance)
        if worse:
            problems.append(f"{label}: {value:.3f} vs baseline {base:.3f} ({entry.get('better', 'lower')} is better)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the measured ratios as the baseline")
    parser.add_argument("--tolerance", type=float, default=0.25)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (smoke run)")
    args = parser.parse_args()
    config = json.loads(BASELINE.read_text()) if BASELINE.exists() else {"scripts": {}, "ratios": {}}
    now: dict[str, float] = {}
    for script, script_args in config["scripts"].items():
        print(f"running {script} ...", flush=True)
        now.update(run(script, [*script_args, *(["--quick"] if args.quick else [])]))
    for label, value in sorted(now.items()):
        print(f"  {label}: {value:.3f}")
    if args.update:
        for label, value in now.items():
            entry = config["ratios"].setdefault(label, {"better": "lower"})
            entry["value"] = round(value, 4)
        BASELINE.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        print(f"baseline written: {BASELINE}")
        return 0
    problems = compare(config["ratios"], now, args.tolerance)
    for line in problems:
        print(f"REGRESSION {line}")
    print(f"{len(now)} ratios, {len(problems)} regressions (tolerance {args.tolerance:.0%})")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
