"""``jupyter sci run NOTEBOOK``: execute a notebook headless with every cell cached.

The notebook runs top to bottom in a kernel of this Python with sci_ext in auto mode
(:mod:`sci_ext.core.autorun`): cells whose code, inputs and files did not change
since a previous run are restored, the others run.  ``--param k=v`` sets parameters as
papermill does: a cell tagged ``injected-parameters`` is inserted after the cell tagged
``parameters`` (or at the top).  The executed notebook is written to ``-o OUT``
(default: the notebook itself, as Run All and Save would); per cell, the command prints
whether it was restored or ran and why, and the time the restored cells saved.  Exit 0
when every cell ran, 1 when one failed (its number among the notebook's code cells, and
its error, are printed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "inject_parameters", "parse_param"]

_DURATIONS = "auto-run-durations.json"


def add_parser(subparsers: Any) -> None:
    """Add the ``run`` command."""
    run = subparsers.add_parser(
        "run",
        help="execute a notebook headless, restoring the cells that did not change",
        description="Execute NOTEBOOK with every code cell cached (sci_ext auto mode): unchanged cells are restored, "
        "changed ones run. Exit 0 on success, 1 when a cell fails, 2 on bad usage.",
    )
    run.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file to run")
    run.add_argument("-o", "--output", metavar="OUT", help="write the executed notebook here (default: NOTEBOOK)")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter (a Python literal, else a string); repeatable",
    )
    run.add_argument("--cache-dir", metavar="DIR", help="cell cache directory (default: cache.dir)")
    run.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="per-cell timeout (default none)")
    run.add_argument("--json", action="store_true", help="print the per-cell report as JSON")
    run.set_defaults(handler=_run)


def parse_param(text: str) -> tuple[str, Any]:
    """``name=value`` -> ``(name, value)``; the value is a Python literal when it parses as one."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError(f"--param {text!r}: expected NAME=VALUE with NAME a Python identifier")
    try:
        value: Any = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name, value


def inject_parameters(nb: Any, params: dict[str, Any]) -> None:
    """Insert (or replace) the ``injected-parameters`` cell after the ``parameters`` cell, as papermill does."""
    import nbformat

    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    if not params:
        return
    source = "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    after = next(
        (i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
        -1,
    )
    nb.cells.insert(after + 1, cell)


def _cache_dir(option: str | None) -> Path | None:
    import sys

    from ..core import trust
    from ..core.config import get_config

    path = Path(option).expanduser() if option else Path(get_config().cache.dir).expanduser()
    try:
        return trust.ensure_private_dir(path.resolve(), what="cache directory")
    except (OSError, trust.UntrustedPathError) as exc:
        print(f"jupyter sci run: warning: the cache cannot be used, every cell runs: {exc}", file=sys.stderr)
        return None


def _load_durations(cache_dir: Path | None) -> dict[str, float]:
    if cache_dir is None:
        return {}
    try:
        data = json.loads((cache_dir / _DURATIONS).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save_durations(cache_dir: Path | None, durations: dict[str, float]) -> None:
    from ..core import trust

    if cache_dir is not None:
        trust.atomic_write(cache_dir / _DURATIONS, json.dumps(durations))


def _first_error(nb: Any) -> tuple[str, str] | None:
    """``(where, error)`` of the first failed cell, numbered as code cells of the user's notebook."""
    code_number = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        injected = "injected-parameters" in cell.get("metadata", {}).get("tags", [])
        code_number += 0 if injected else 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                where = "the injected parameters cell" if injected else f"cell {code_number}"
                return where, f"{out.get('ename')}: {out.get('evalue')}"
    return None


def _run(args: argparse.Namespace) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from ..core.autorun import make_kernelspec
    from . import CheckFailure, UsageFailure

    path = Path(args.notebook)
    if path.suffix != ".ipynb" or not path.is_file():
        raise UsageFailure(f"NOTEBOOK {path}: not an .ipynb file")
    try:
        params = dict(parse_param(p) for p in args.param)
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        raise UsageFailure(f"{path}: not a readable notebook ({exc})") from None
    inject_parameters(nb, params)
    cache_dir = _cache_dir(args.cache_dir)
    durations = _load_durations(cache_dir)
    import shutil

    from ..core import trust

    tmp = trust.private_temp_dir("sci_ext-run-")
    try:
        kernel = make_kernelspec(tmp / "work", cache_dir)
        kernel.activate()
        client = NotebookClient(
            nb,
            kernel_name=kernel.name,
            timeout=args.timeout,
            resources={"metadata": {"path": str(path.resolve().parent)}},
        )
        started = time.monotonic()
        failed = False
        try:
            client.execute()
        except CellExecutionError:
            failed = True
        elapsed = time.monotonic() - started
        records, _ = kernel.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(args.output) if args.output else path
    nbformat.write(nb, out)
    saved = 0.0
    for record in records:
        if record.get("status") == "restored":
            saved += durations.get(record["cell"], 0.0)
        elif record.get("status") == "ran":
            durations[record["cell"]] = float(record.get("seconds", 0.0))
    _save_durations(cache_dir, durations)
    if args.json:
        print(json.dumps({"cells": records, "seconds": elapsed, "saved_seconds": saved, "output": str(out)}))
    else:
        _print_report(records, elapsed, saved, out)
    if failed:
        where = _first_error(nb)
        if where is None:
            raise CheckFailure(f"{path}: a cell failed")
        raise CheckFailure(f"{path}: {where[0]} failed: {where[1]}")
    return 0


def _print_report(records: list[dict[str, Any]], elapsed: float, saved: float, out: Path) -> None:
    restored = sum(1 for r in records if r.get("status") == "restored")
    ran = sum(1 for r in records if r.get("status") in ("ran", "failed"))
    for number, record in enumerate(records, 1):
        status = record.get("status", "?")
        reason = record.get("reason") or ""
        detail = f": {reason}" if reason and status != "restored" else ""
        print(f"  [{number:>3}] {status:<8} {record.get('first_line', '')[:50]}{detail}")
    print(f"{restored} restored, {ran} ran in {elapsed:.1f} s; restoring saved about {saved:.1f} s; wrote {out}")
