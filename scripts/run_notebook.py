"""Run a notebook headless with nbclient and print each cell's text output.

Used by ``./scripts/dev.sh lab --headless``. Exit status 1 if a cell fails that is
not tagged ``raises-exception``.
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
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        print(f"--- In [{index}]: {cell.source.splitlines()[0] if cell.source else ''}")
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                print(out.text, end="")
            elif out.output_type in ("display_data", "execute_result"):
                print(out.data.get("text/plain", ""))
            elif out.output_type == "error":
                print(f"{out.ename}: {out.evalue}")
    print(f"{nb_path.name}: all cells ran")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "notebooks/01_quickstart.ipynb"))
