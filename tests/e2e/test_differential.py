"""``%%cached`` equals a plain run on a CI subset of the public-notebook corpus (issue 25).

Each notebook flagged ``ci = true`` in ``tests/differential/corpus/corpus.toml`` runs through the
differential harness (plain twice, cached miss run, cached restart run, upstream edit: plain vs
cached) in real kernels.  The test fails on any stale hit, any miss whose outputs or state differ
from the plain run, and any error the cache introduced; the message lists each finding with the
cell.  The whole corpus runs as a benchmark: ``benchmarks/bench_differential.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the differential package

from differential import load_corpus, run_case  # noqa: E402

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

CASES = load_corpus("ci")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cached_notebook_equals_plain_run(case) -> None:
    report = run_case(case, parallel=True)
    bad = [f for f in report.findings if f.kind in ("stale hit", "miss differs", "error introduced")]
    assert not bad, f"{case.name}: %%cached differs from the plain run:\n" + "\n".join(f.format() for f in bad)
    # The comparison covered something: a notebook whose cells are all excluded proves nothing.
    assert report.cells - len(report.nondeterministic) >= report.cells // 2, report.format()
    assert report.restart_eligible > 0, report.format()
