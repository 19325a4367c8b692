"""Differential testing of ``%%cached`` against plain runs: plain execution is the oracle.

For one notebook and one *upstream edit* (:class:`Edit`: a changed constant, data file or
seed), :func:`run_case` runs real kernels:

1. **plain, twice** (fresh working directories): cells whose normalised outputs or state
   differ between the two are *non-deterministic* and left out of every comparison (the
   report lists them); cells whose outputs are the same only once durations and dates are
   masked (``%timeit``, a printed time) or images reduced to their presence (a plot of
   unseeded data) are *varying*: compared that way, but not counted in the restart-hit
   figure, since two plain runs of them do not show the same thing (the report lists them);
2. **cached miss run**: every code cell with ``%%cached`` prepended (a cell starting with
   another cell magic, ``%%bash``/``%%time``..., is left as it is, since ``%%cached`` must be
   the first line and cannot wrap another cell magic; the report counts them), in a fresh
   cache: every cell is a miss and must equal the plain run;
3. **cached restart run**: a new kernel, same cache and working directory: deterministic
   cells should hit, and whatever they show and leave must equal the plain run; a miss must
   be explained by a sci_ext line;
4. **upstream edit**: the edit applied, one plain run (fresh directory) and one cached run
   (new kernel, same cache and working directory as 2–3); every cached cell must equal the
   plain edited run. A hit that differs is a *stale hit*.

Each cell is compared by its outputs (:mod:`sanitize`) and by the state it leaves
(:mod:`sci_diff_probe`: digests of the notebook's plain-data globals and of the global
random states; a difference is charged to the first cell where it appears).

The kernels get an isolated environment: ``SCI_EXT_CACHE__DIR`` in a temporary directory,
own ``XDG_*``/``IPYTHONDIR``/Jupyter dirs, no ``SCI_EXT_*`` variables from the caller, and
the code under test first on ``PYTHONPATH`` (``code_root``; default: this checkout).

API: build a :class:`Case` (or load the corpus with :func:`corpus.load_corpus`), call
:func:`run_case`, read :class:`CaseReport` (``.findings``, ``.counts``, ``.format()``);
:func:`summarise` adds reports up into the goal figures.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from .runner import CellRun, KernelConfig, kernel_env, run_cells
from .sanitize import engine_lines, error_of, normalise

REPO = Path(__file__).resolve().parents[2]


def default_code_root() -> Path:
    """The checkout whose ``sci_ext`` the kernels import: ``$SCI_DIFF_CODE_ROOT`` or this one."""
    return Path(os.environ.get("SCI_DIFF_CODE_ROOT") or REPO).resolve()


# --------------------------------------------------------------------------- edits


@dataclass
class Edit:
    """An upstream edit: ``apply(sources, workdir)`` returns the edited code cells (same count)
    and may change files in ``workdir`` (the copy of the notebook's data the run uses)."""

    description: str
    apply: Callable[[list[str], Path], list[str]]


def replace_in_cell(old: str, new: str, description: str = "") -> Edit:
    """Replace ``old`` by ``new`` in the one code cell that contains it (a changed constant or helper)."""

    def apply(sources: list[str], workdir: Path) -> list[str]:
        hits = [i for i, s in enumerate(sources) if old in s]
        if len(hits) != 1:
            raise ValueError(f"edit {old!r}: expected in exactly one code cell, found in {len(hits)}")
        out = list(sources)
        out[hits[0]] = out[hits[0]].replace(old, new)
        return out

    return Edit(description or f"cell {old!r} -> {new!r}", apply)


def edit_file(path: str, old: str, new: str, description: str = "") -> Edit:
    """Replace ``old`` by ``new`` in the data file ``path`` (relative to the working directory)."""

    def apply(sources: list[str], workdir: Path) -> list[str]:
        target = workdir / path
        text = target.read_text()
        if old not in text:
            raise ValueError(f"edit of {path}: {old!r} not found")
        target.write_text(text.replace(old, new))
        return list(sources)

    return Edit(description or f"file {path}: {old!r} -> {new!r}", apply)


def change_seed(old: int, new: int, description: str = "") -> Edit:
    """Change every seed ``old`` to ``new`` (``seed(old)``, ``random_state=old``, ``RandomState(old)``,
    ``default_rng(old)``) in every code cell."""
    pattern = re.compile(rf"((?:seed|random_state|RandomState|default_rng)\s*[(=]\s*){old}\b")

    def apply(sources: list[str], workdir: Path) -> list[str]:
        out = [pattern.sub(rf"\g<1>{new}", s) for s in sources]
        if out == sources:
            raise ValueError(f"edit: seed {old} not found")
        return out

    return Edit(description or f"seed {old} -> {new}", apply)


# --------------------------------------------------------------------------- cases and results


@dataclass
class Case:
    """One notebook of the differential corpus."""

    name: str
    notebook: Path
    edit: Edit
    files: list[str] = field(default_factory=list)  # "src" or "src -> dst", relative to the notebook's folder / workdir
    llm: bool = False  # start the fake LLM server and point the openai/anthropic SDKs at it
    cell_timeout: float = 60.0

    def sources(self) -> list[str]:
        """The notebook's code cells."""
        nb = nbformat.read(str(self.notebook), as_version=4)
        return [c.source for c in nb.cells if c.cell_type == "code"]


@dataclass
class Finding:
    """One discrepancy between a cached run and the plain oracle."""

    kind: str  # stale hit | miss differs | error introduced | unexplained miss | timeout
    phase: str  # miss run | restart | edited
    cell: int
    source: str
    detail: str
    after: int | None = None  # an earlier finding of the same phase this one may follow from

    def format(self) -> str:
        first = self.source.strip().splitlines()[0] if self.source.strip() else ""
        later = "" if self.after is None else f" [after cell {self.after}'s finding]"
        return f"{self.kind} ({self.phase}) cell {self.cell} `{first[:70]}`{later}: {self.detail}"


@dataclass
class CaseReport:
    """What :func:`run_case` found for one notebook."""

    name: str
    cells: int = 0
    wrapped: int = 0
    not_wrapped: list[int] = field(default_factory=list)  # cells starting with another cell magic
    nondeterministic: list[int] = field(default_factory=list)
    #: Same outputs only with durations/dates masked or images by presence: compared, not in the hit figure.
    varying: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    restart_hits: int = 0
    restart_eligible: int = 0  # deterministic and not varying, wrapped, plain run ok
    restart_misses: int = 0
    restart_misses_explained: int = 0
    restart_uncacheable: int = 0  # deterministic cells the engine refused to cache ("not cached: ...")
    edited_misses: int = 0
    edited_misses_explained: int = 0
    plain_seconds: float = 0.0
    miss_seconds: float = 0.0
    hit_seconds: float = 0.0
    wall_seconds: float = 0.0
    runs: dict[str, list[CellRun]] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        """Findings of one kind."""
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def counts(self) -> dict[str, int]:
        """The goal counters of this notebook."""
        return {
            "stale hits": self.count("stale hit"),
            "misses differing from plain": self.count("miss differs"),
            "errors introduced": self.count("error introduced"),
            "unexplained misses after restart": self.restart_misses - self.restart_misses_explained,
        }

    def format(self) -> str:
        """A human summary with every finding."""
        lines = [
            f"{self.name}: {self.cells} cells ({self.wrapped} under %%cached"
            + (f"; not wrapped (cell magic): {self.not_wrapped}" if self.not_wrapped else "")
            + f"); non-deterministic (excluded): {self.nondeterministic or 'none'}; "
            + f"varying (compared, not counted): {self.varying or 'none'}; "
            f"restart hits {self.restart_hits}/{self.restart_eligible}; "
            f"restart misses explained {self.restart_misses_explained}/{self.restart_misses}"
        ]
        lines += ["  " + f.format() for f in self.findings]
        return "\n".join(lines)


# --------------------------------------------------------------------------- running


def wrap(source: str) -> str | None:
    """``source`` under ``%%cached``, or None when it is left as it is (empty, or another cell magic)."""
    stripped = source.lstrip()
    if not stripped or stripped.startswith("%%"):
        return None
    return "%%cached\n" + source


@dataclass
class _Env:
    code_root: Path | None
    root: Path
    extra: dict[str, str]
    bytecode: bool

    def config(self, tag: str, workdir: Path, cache: Path | None, timeout: float, cached: bool) -> KernelConfig:
        home = self.root / f"home-{tag}"
        env = kernel_env(self.code_root, home, cache, self.extra, self.bytecode)
        return KernelConfig(env=env, cwd=workdir, load_extension=cached, cell_timeout=timeout)


def _fresh_workdir(case: Case, root: Path, tag: str) -> Path:
    workdir = root / f"work-{tag}"
    workdir.mkdir(parents=True)
    base = case.notebook.parent
    for rel in case.files:
        # "data/nb/x.csv -> x.csv": copy a corpus file to another place in the working directory
        src_rel, _, dst_rel = rel.partition(" -> ")
        src = base / src_rel
        dst = workdir / (dst_rel or src_rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    return workdir


def _llm_env(stack: list[Any]) -> dict[str, str]:
    try:
        from sci_ext.testing import FakeLLMServer  # type: ignore[attr-defined]  # where 23b moves it
    except Exception:
        from fake_llm_server import FakeLLMServer
    server = FakeLLMServer().start()
    stack.append(server)
    return {
        "OPENAI_BASE_URL": server.openai_url,
        "OPENAI_API_KEY": "sk-fake-differential",
        "ANTHROPIC_BASE_URL": server.anthropic_url,
        "ANTHROPIC_API_KEY": "sk-ant-fake-differential",
    }


def run_case(
    case: Case,
    code_root: Path | None = None,
    keep: Path | None = None,
    bytecode: bool = False,
    log: Callable[[str], None] | None = None,
    parallel: bool = False,
) -> CaseReport:
    """Run the four phases of the module docstring on ``case`` and compare them.

    ``code_root``: the checkout whose ``sci_ext`` the kernels import (first on PYTHONPATH; default
    :func:`default_code_root`, so ``SCI_DIFF_CODE_ROOT=/other/checkout pytest ...`` tests another branch);
    ``keep``: a directory to leave the runs in (default: a temporary one, removed);
    ``bytecode``: let the kernels write bytecode caches (benchmarks, as users do);
    ``parallel``: run independent kernels side by side (faster; per-cell times then include contention).
    """
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix=f"sci-diff-{case.name}-", dir=keep))
    servers: list[Any] = []
    try:
        extra = _llm_env(servers) if case.llm else {}
        extra.setdefault("MPLCONFIGDIR", os.environ.get("MPLCONFIGDIR") or str(Path.home() / ".cache" / "matplotlib"))
        env = _Env(code_root or default_code_root(), root, extra, bytecode)
        say = log or (lambda _msg: None)
        sources = case.sources()
        wrapped = [wrap(s) for s in sources]
        cached_sources = [w if w is not None else s for w, s in zip(wrapped, sources)]
        cache = root / "cache"
        timeout = case.cell_timeout

        def plain(tag: str, srcs: list[str], edit: bool = False) -> tuple[list[CellRun], Path]:
            workdir = _fresh_workdir(case, root, tag)
            if edit:
                srcs = case.edit.apply(srcs, workdir)
            return run_cells(srcs, env.config(tag, workdir, None, timeout, cached=False)), workdir

        def cached_run(srcs: list[str]) -> list[CellRun]:
            return run_cells(srcs, env.config("cached", cached_dir, cache, timeout, cached=True))

        cached_dir = _fresh_workdir(case, root, "cached")
        # Independent kernels may run side by side (parallel=True): the plain runs, the miss run;
        # then the restart run and the plain edited run; the cached edited run last.
        with ThreadPoolExecutor(max_workers=3 if parallel else 1) as pool:
            say(f"{case.name}: plain x2, cached miss run")
            f1 = pool.submit(plain, "plain1", sources)
            f2 = pool.submit(plain, "plain2", sources)
            fb = pool.submit(cached_run, cached_sources)
            (p1, w1), (p2, w2), b = f1.result(), f2.result(), fb.result()
            say(f"{case.name}: cached restart run, plain edited run")
            fc = pool.submit(cached_run, cached_sources)
            fe = pool.submit(plain, "plain-edited", sources, True)
            c, (pe, we) = fc.result(), fe.result()
        edited = case.edit.apply(sources, cached_dir)
        if len(edited) != len(sources):
            raise ValueError(f"{case.name}: the edit changed the number of code cells")
        edited_cached = [w if w is not None else s for w, s in zip((wrap(s) for s in edited), edited)]
        say(f"{case.name}: cached edited run")
        d = cached_run(edited_cached)

        paths = {
            str(w1): "<cwd>",
            str(w2): "<cwd>",
            str(we): "<cwd>",
            str(cached_dir): "<cwd>",
            str(cache): "<cache>",
            str(root): "<root>",
        }
        report = compare(case.name, sources, wrapped, p1, p2, b, c, pe, d, paths)
        report.runs = {"plain1": p1, "plain2": p2, "miss": b, "restart": c, "plain-edited": pe, "edited": d}
        report.wall_seconds = time.perf_counter() - started
        return report
    finally:
        for server in servers:
            server.stop()
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def net_cost(case: Case, code_root: Path | None = None, pairs: int = 1) -> tuple[float, float]:
    """``(CPU with the safety net, CPU without it)``: the kernel CPU seconds of ``case``'s cached
    miss run, summed over its cells and over ``pairs`` interleaved pairs of runs.

    Each run starts with an empty cache, so every cell the engine accepts is a miss; the run
    without the net has the probe switch it off (``SCI_DIFF_SAFETY_NET=off``).  The order
    alternates between pairs, so a trend in the machine's load falls on both sides.
    """
    totals = {"on": 0.0, "off": 0.0}
    root = Path(tempfile.mkdtemp(prefix=f"sci-net-{case.name}-"))
    servers: list[Any] = []
    try:
        extra = _llm_env(servers) if case.llm else {}
        extra.setdefault("MPLCONFIGDIR", os.environ.get("MPLCONFIGDIR") or str(Path.home() / ".cache" / "matplotlib"))
        sources = case.sources()
        cached_sources = [w if w is not None else s for w, s in zip((wrap(s) for s in sources), sources)]
        for pair in range(pairs):
            for net in ("on", "off") if pair % 2 == 0 else ("off", "on"):
                tag = f"{net}{pair}"
                workdir = _fresh_workdir(case, root, tag)
                env = _Env(code_root or default_code_root(), root, {**extra, "SCI_DIFF_SAFETY_NET": net}, True)
                runs = run_cells(
                    cached_sources, env.config(tag, workdir, root / f"cache-{tag}", case.cell_timeout, True)
                )
                totals[net] += sum(r.cpu or 0.0 for r in runs)
        return totals["on"], totals["off"]
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- comparing


def _diff_names(a: CellRun, b: CellRun) -> set[str]:
    if a.state is None or b.state is None:  # the probe failed: no state comparison for this cell
        return set()
    # The global random states count only where both runs have them: sci_ext itself imports
    # numpy, so a cached run can have a numpy random state where the plain run has none.
    names = (set(a.state) | set(b.state)) - {n for n in set(a.state) ^ set(b.state) if n.startswith("<")}
    return {n for n in names if a.state.get(n) != b.state.get(n)}


def _explanation(run: CellRun) -> list[str]:
    """sci_ext's lines about this cell other than the hit notice."""
    return [line for line in engine_lines(run.outputs) if not ("cached cell" in line and "restored from" in line)]


@dataclass
class _Oracle:
    """Per cell: how to compare (image mode), which names are noisy, whether it is comparable."""

    images: list[str]
    noisy: list[set[str]]
    deterministic: list[bool]
    #: Identical outputs in the two plain runs, durations, dates and image bytes included.
    exact: list[bool]


def _oracle(p1: list[CellRun], p2: list[CellRun], paths: dict[str, str]) -> _Oracle:
    images, noisy, det, exact = [], [], [], []
    seen: set[str] = set()
    prev: set[str] = set()
    for a, b in zip(p1, p2):
        diff = _diff_names(a, b)
        # An unseeded global random state differs from the start: noisy, not a property of the cell.
        new = {n for n in diff - prev if not n.startswith("<")}
        prev = diff
        seen |= diff
        noisy.append(set(seen))
        if a.status == "not run" or b.status == "not run" or a.status == "timeout":
            images.append("presence")
            det.append(False)
            exact.append(False)
            continue
        if normalise(a.outputs, paths) == normalise(b.outputs, paths):
            mode = "hash"
        elif normalise(a.outputs, paths, "presence") == normalise(b.outputs, paths, "presence"):
            mode = "presence"
        else:
            mode = ""
        images.append(mode or "presence")
        det.append(bool(mode) and not new)
        exact.append(
            mode == "hash" and normalise(a.outputs, paths, times=False) == normalise(b.outputs, paths, times=False)
        )
    return _Oracle(images, noisy, det, exact)


def _difference(plain: Any, cached: Any, context: int = 80) -> str:
    """Where two normalised outputs first differ, with some context on each side."""
    a, b = repr(plain), repr(cached)
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, at - context)
    return f"plain ...{a[start : at + context]!r}... vs cached ...{b[start : at + context]!r}..."


def _compare_phase(
    phase: str,
    sources: list[str],
    oracle: _Oracle,
    plain: list[CellRun],
    cached: list[CellRun],
    paths: dict[str, str],
    report: CaseReport,
) -> None:
    prev: set[str] = set()
    first = len(report.findings)
    for i, (p, c) in enumerate(zip(plain, cached)):
        earlier = report.findings[first].cell if len(report.findings) > first else None
        diff = _diff_names(p, c)
        new_state = diff - prev - oracle.noisy[i]
        prev = diff
        if not oracle.deterministic[i] or c.status == "not run" or p.status == "not run":
            continue
        src = sources[i]
        if c.status == "timeout" and p.status != "timeout":
            report.findings.append(
                Finding(
                    "error introduced",
                    phase,
                    i,
                    src,
                    f"timed out after {c.seconds:.0f}s; plain took {p.seconds:.1f}s",
                    earlier,
                )
            )
            continue
        pe, ce = error_of(p.outputs), error_of(c.outputs)
        if ce is not None and (pe is None or pe[0] != ce[0]):
            report.findings.append(
                Finding(
                    "error introduced",
                    phase,
                    i,
                    src,
                    f"cached raised {ce[0]}: {ce[1][:200]}; plain: {pe or 'no error'}",
                    earlier,
                )
            )
            continue
        po = normalise(p.outputs, paths, oracle.images[i])
        co = normalise(c.outputs, paths, oracle.images[i])
        problems = []
        if po != co:
            problems.append(f"outputs differ: {_difference(po, co)}")
        if new_state:
            problems.append(f"state differs in {sorted(new_state)}")
        if problems:
            kind = "stale hit" if c.hit else "miss differs"
            report.findings.append(Finding(kind, phase, i, src, "; ".join(problems), earlier))


def compare(
    name: str,
    sources: list[str],
    wrapped: list[str | None],
    p1: list[CellRun],
    p2: list[CellRun],
    miss: list[CellRun],
    restart: list[CellRun],
    plain_edited: list[CellRun],
    edited: list[CellRun],
    paths: dict[str, str],
) -> CaseReport:
    """Compare the runs of one notebook (the phases of :func:`run_case`) into a :class:`CaseReport`."""
    report = CaseReport(name=name, cells=len(sources))
    report.wrapped = sum(w is not None for w in wrapped)
    report.not_wrapped = [i for i, (w, s) in enumerate(zip(wrapped, sources)) if w is None and s.strip()]
    oracle = _oracle(p1, p2, paths)
    report.nondeterministic = [i for i, d in enumerate(oracle.deterministic) if not d and sources[i].strip()]
    report.varying = [
        i for i, (d, e) in enumerate(zip(oracle.deterministic, oracle.exact)) if d and not e and sources[i].strip()
    ]
    _compare_phase("miss run", sources, oracle, p1, miss, paths, report)
    _compare_phase("restart", sources, oracle, p1, restart, paths, report)
    _compare_phase("edited", sources, oracle, plain_edited, edited, paths, report)
    for i, (w, p, c) in enumerate(zip(wrapped, p1, restart)):
        if w is None or c.status == "not run":
            continue
        plain_failed = error_of(p.outputs) is not None
        if oracle.deterministic[i] and oracle.exact[i] and not plain_failed:
            report.restart_eligible += 1
            report.restart_hits += c.hit
            report.restart_uncacheable += any("not cached" in line for line in _explanation(c))
        if not c.hit:
            report.restart_misses += 1
            if _explanation(c) or plain_failed:  # a failing cell is never stored: its error says why
                report.restart_misses_explained += 1
            else:
                report.findings.append(
                    Finding(
                        "unexplained miss",
                        "restart",
                        i,
                        sources[i],
                        "missed after a restart with no sci_ext line saying why",
                    )
                )
    for w, p, c in zip(wrapped, plain_edited, edited):
        if w is None or c.status == "not run" or c.hit:
            continue
        report.edited_misses += 1
        report.edited_misses_explained += bool(_explanation(c) or error_of(p.outputs) is not None)
    report.plain_seconds = sum(r.seconds for r in p1)
    report.miss_seconds = sum(r.seconds for r in miss)
    report.hit_seconds = sum(r.seconds for r in restart)
    return report


# --------------------------------------------------------------------------- totals


def summarise(reports: Iterable[CaseReport]) -> dict[str, Any]:
    """The issue's goal figures over several notebooks."""
    reports = list(reports)
    restart_misses = sum(r.restart_misses for r in reports)
    explained = sum(r.restart_misses_explained for r in reports)
    eligible = sum(r.restart_eligible for r in reports)
    hits = sum(r.restart_hits for r in reports)
    uncacheable = sum(r.restart_uncacheable for r in reports)
    plain = sum(r.plain_seconds for r in reports)
    miss = sum(r.miss_seconds for r in reports)
    return {
        "notebooks": len(reports),
        "cells": sum(r.cells for r in reports),
        "cells under %%cached": sum(r.wrapped for r in reports),
        "non-deterministic cells (excluded)": sum(len(r.nondeterministic) for r in reports),
        "cells with timings or images differing between plain runs (compared, not counted)": sum(
            len(r.varying) for r in reports
        ),
        "stale hits": sum(r.count("stale hit") for r in reports),
        "misses differing from plain": sum(r.count("miss differs") for r in reports),
        "errors introduced": sum(r.count("error introduced") for r in reports),
        "misses after restart": restart_misses,
        "misses after restart explained %": 100.0 * explained / restart_misses if restart_misses else 100.0,
        "hits after restart (deterministic cells) %": 100.0 * hits / eligible if eligible else 0.0,
        "hits after restart": f"{hits}/{eligible}",
        "hits after restart, cacheable cells %": (
            100.0 * hits / (eligible - uncacheable) if eligible - uncacheable else 0.0
        ),
        "deterministic cells refused by the engine": uncacheable,
        "edited-run misses explained %": (
            100.0 * sum(r.edited_misses_explained for r in reports) / sum(r.edited_misses for r in reports)
            if sum(r.edited_misses for r in reports)
            else 100.0
        ),
        "miss run / plain run (cell time)": miss / plain if plain else 0.0,
    }
