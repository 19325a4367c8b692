"""Run a notebook headless with nbclient and print each cell's text output.

Used by ``./scripts/dev.sh lab --headless``. Exit status 1 if a cell fails that is
not tagged ``raises-exception``. Cells tagged ``raises-exception`` fail on purpose
(the quickstart shows what a refused setting looks like): their header and error
line say "expected error", so nobody mistakes them for a broken run; such a cell
that does not fail is reported, since its demonstration no longer shows anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main(path: str) -> int:
    nb_path = Path(path).resolve()
    nb = nbformat.read(nb_path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        print(exc, file=sys.stderr)
        return 1
    expected = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        first = cell.source.splitlines()[0] if cell.source else ""
        intended = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        label = " (expected error: this cell fails on purpose)" if intended else ""
        # The execution count, as JupyterLab shows it (In [1] is the first code cell run, not index 1).
        count = cell.get("execution_count")
        print(f"--- In [{count if count is not None else ' '}]{label}: {first}")
        failed = False
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and intended and out.name == "stderr":
                failed = True  # a magic's UsageError is printed on stderr, not as an error output
                print(f"expected error, as intended: {out.text}", end="")
            elif out.output_type == "stream":
                print(out.text, end="")
            elif out.output_type in ("display_data", "execute_result"):
                print(out.data.get("text/plain", ""))
            elif out.output_type == "error":
                failed = True
                print(f"{'expected error, as intended: ' if intended else ''}{out.ename}: {out.evalue}")
        if intended:
            expected += failed
            if not failed:
                print("note: this cell is tagged raises-exception but ran without an error")
    shown = f" ({expected} expected error(s) shown above, from cells that fail on purpose)" if expected else ""
    print(f"{nb_path.name}: all cells ran{shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "notebooks/01_quickstart.ipynb"))
