"""Small things a new user trips on: how to install, a quiet bandit, and expected errors labelled."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[2]


def test_readme_says_how_to_install_from_the_repository():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    # No instruction to `pip install sci_ext` from an index that does not have it...
    for line in readme.splitlines():
        if re.search(r"pip install sci_ext\b", line):
            assert "not on PyPI" in line, line
    # ...but from a clone of this repository, or a wheel built there; no URL nobody has checked.
    assert "from a clone of this repository" in readme
    assert "pip install ." in readme
    assert re.search(r"pip install dist/sci_ext-\S*\.whl", readme)
    assert "https://" not in readme.split("## Install", 1)[1].split("\n## ", 1)[0]


def test_bandit_as_the_test_command_runs_it_prints_nothing():
    """`./scripts/dev.sh test` runs bandit -q: no "Test in comment: ... is not a test name" lines."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "bandit"), "-q", "-c", "pyproject.toml", "-r", "sci_ext"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == "", (done.stdout + done.stderr)[:2000]


def test_every_nosec_comment_names_only_test_ids():
    """Bandit reads every word after `# nosec` up to the next `#` as a test id."""
    for path in (REPO / "sci_ext").rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = re.search(r"#\s*nosec\b([^#]*)", line)
            if match:
                ids = match.group(1).replace(",", " ").split()
                assert all(re.fullmatch(r"B\d{3}", i) for i in ids), f"{path}:{number}: {line.strip()}"


def test_the_quickstart_says_its_failing_cells_fail_on_purpose():
    nb = nbformat.read(REPO / "notebooks" / "01_quickstart.ipynb", as_version=4)
    for index, cell in enumerate(nb.cells):
        if "raises-exception" in cell.get("metadata", {}).get("tags", []):
            before = [c for c in nb.cells[:index] if c.cell_type == "markdown"][-1]
            assert "fail on purpose" in before.source and "UsageError" in before.source, before.source


def test_the_headless_run_labels_expected_errors(tmp_path):
    nb = new_notebook(
        cells=[
            new_markdown_cell("The next cell fails on purpose."),
            new_code_cell("%load_ext sci_ext"),
            new_code_cell("%sci_config rag.top_k=many", metadata={"tags": ["raises-exception"]}),
            new_code_cell("raise ValueError('shown on purpose')", metadata={"tags": ["raises-exception"]}),
            new_code_cell("print('fine')", metadata={"tags": ["raises-exception"]}),
            new_markdown_cell("Numbered as JupyterLab numbers them: code cells run, not positions."),
            new_code_cell("print('after')"),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, path)
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_notebook.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "--- In [2] (expected error: this cell fails on purpose): %sci_config rag.top_k=many" in out
    assert "expected error, as intended: UsageError:" in out
    assert "expected error, as intended: ValueError: shown on purpose" in out
    assert "note: this cell is tagged raises-exception but ran without an error" in out
    assert "--- In [5]: print('after')" in out
    assert out.strip().endswith(
        "demo.ipynb: all cells ran (2 expected error(s) shown above, from cells that fail on purpose)"
    )
    assert json.loads(path.read_text())["cells"]  # the notebook file itself is left as it was
