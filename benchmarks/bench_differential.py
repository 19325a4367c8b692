"""Differential benchmark of ``%%cached`` against plain runs over the public-notebook corpus.

Runs every notebook of ``tests/differential/corpus`` (``--quick``: the quick subset) through
the harness (plain twice, cached miss run, cached restart run, upstream edit: plain vs cached;
see ``tests/differential/harness.py``) and prints the issue's goal figures:

    stale hits                                       goal 0
    misses differing from plain                      goal 0
    errors introduced                                goal 0
    misses after restart explained by a line         goal 100 %
    hits after restart (deterministic cells)         goal >= 98 %
                                                     (cells printing timings, or drawing other
                                                     images, in two plain runs are compared but
                                                     not counted: see the harness)
    miss run / plain run cell time                   (includes the engine's safety net)

Usage::

    python benchmarks/bench_differential.py [--quick] [--code-root PATH] [--only NAME ...]
                                            [--json OUT] [--verbose] [--parallel]
    python benchmarks/bench_differential.py --net-cost [PAIRS] [--quick] [--only NAME ...]

``--net-cost``: instead of the comparison, what the dynamic safety net costs a miss on the
corpus: each notebook's cached miss run with the net and without it, in interleaved pairs,
by the kernel's CPU time summed over the cells (goal <= 1.05x).

``--code-root`` chooses the checkout whose ``sci_ext`` the kernels import (default: this one;
e.g. another branch's worktree).  Exit status 1 when a goal is missed, so it can gate a run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from differential import load_corpus, run_case, summarise  # noqa: E402
from differential.harness import default_code_root, net_cost  # noqa: E402

GOALS = {
    "stale hits": lambda v: v == 0,
    "misses differing from plain": lambda v: v == 0,
    "errors introduced": lambda v: v == 0,
    "misses after restart explained %": lambda v: v >= 100.0,
    "hits after restart (deterministic cells) %": lambda v: v >= 98.0,
}
NET_COST_GOAL = 1.05


def _commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()[:90]
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _net_cost(cases: list, root: Path, pairs: int) -> int:
    """Print the safety net's cost on each notebook's miss run and on the corpus; 1 above the goal."""
    print(f"sci_ext under test: {root} ({_commit(root)})")
    print(f"{len(cases)} notebooks; cached miss run with and without the safety net, {pairs} interleaved pairs")
    print("(kernel CPU seconds summed over the cells)\n")
    with_net = without = 0.0
    for case in cases:
        on, off = net_cost(case, code_root=root, pairs=pairs)
        with_net, without = with_net + on, without + off
        # A notebook whose cells all fail has no CPU figures (the probe runs after successful cells only).
        ratio = f"ratio {on / off:.3f}x" if off else "no cell timed"
        print(f"  {case.name:28s} with {on:7.2f} s  without {off:7.2f} s  {ratio}", flush=True)
    total = with_net / without if without else float("nan")
    verdict = "goal met" if total <= NET_COST_GOAL else "GOAL MISSED"
    print(f"\n  safety net on the corpus's misses: {total:.3f}x (goal <= {NET_COST_GOAL}x)  {verdict}")
    return 0 if total <= NET_COST_GOAL else 1


def main(argv: list[str] | None = None) -> int:
    """Run the corpus and print the goal figures; 1 when a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick subset of the corpus")
    parser.add_argument(
        "--code-root",
        type=Path,
        default=default_code_root(),
        help="checkout whose sci_ext the kernels import (default: $SCI_DIFF_CODE_ROOT or this one)",
    )
    parser.add_argument("--only", nargs="*", default=None, help="notebook names")
    parser.add_argument("--json", type=Path, default=None, help="write the reports here")
    parser.add_argument("--verbose", action="store_true", help="print every finding")
    parser.add_argument(
        "--parallel", action="store_true", help="run independent kernels side by side (faster; noisier cell times)"
    )
    parser.add_argument(
        "--net-cost",
        type=int,
        nargs="?",
        const=2,
        default=0,
        metavar="PAIRS",
        help="measure the safety net's cost on the corpus's miss runs instead (default 2 pairs)",
    )
    args = parser.parse_args(argv)

    cases = load_corpus("quick" if args.quick else "all", names=args.only)
    root = args.code_root.resolve()
    if args.net_cost:
        return _net_cost(cases, root, args.net_cost)
    print(f"sci_ext under test: {root} ({_commit(root)})")
    print(f"{len(cases)} notebooks; per notebook: plain x2, cached miss, cached restart, plain+cached after an edit\n")
    reports = []
    failed: list[str] = []
    started = time.perf_counter()
    for case in cases:
        # Bytecode caches on, as users have them (the machine sets PYTHONDONTWRITEBYTECODE).
        try:
            report = run_case(case, code_root=root, bytecode=True, parallel=args.parallel)
        except Exception as exc:  # one broken notebook (kernel died, bad edit) must not hide the others
            print(f"[ERR] {case.name:28s} harness error: {type(exc).__name__}: {exc}", flush=True)
            failed.append(case.name)
            continue
        reports.append(report)
        counts = report.counts
        flag = "ok " if not any(counts.values()) else "BAD"
        print(
            f"[{flag}] {case.name:28s} cells {report.cells:3d}  nondet {len(report.nondeterministic):2d}  "
            f"vary {len(report.varying):2d}  "
            f"stale {counts['stale hits']}  miss!=plain {counts['misses differing from plain']}  "
            f"errors+ {counts['errors introduced']}  restart hits {report.restart_hits}/{report.restart_eligible}  "
            f"explained {report.restart_misses_explained}/{report.restart_misses}  ({report.wall_seconds:.0f}s)",
            flush=True,
        )
        if args.verbose:
            for finding in report.findings:
                print("      " + finding.format(), flush=True)
    figures = summarise(reports)
    print(f"\nTotals ({time.perf_counter() - started:.0f}s):")
    missed = []
    for key, value in figures.items():
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        goal = GOALS.get(key)
        verdict = "" if goal is None else ("  goal met" if goal(value) else "  GOAL MISSED")
        if goal is not None and not goal(value):
            missed.append(key)
        print(f"  {key:45s} {shown}{verdict}")
    if failed:
        print(f"  notebooks the harness could not run: {', '.join(failed)}")
        missed.append("harness errors")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "code_root": str(root),
                    "commit": _commit(root),
                    "figures": figures,
                    "notebooks": [
                        {
                            "name": r.name,
                            "counts": r.counts,
                            "nondeterministic": r.nondeterministic,
                            "varying": r.varying,
                            "findings": [f.format() for f in r.findings],
                        }
                        for r in reports
                    ],
                },
                indent=2,
            )
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
