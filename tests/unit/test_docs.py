"""README.md keeps its promises: two commands first, a reference that matches the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    first, second = blocks[0].split("#")[0].strip(), blocks[1].split("#")[0].strip()
    assert first == "./scripts/dev.sh lab" and second == "./scripts/dev.sh test"
    assert text.index("```bash") < text.index("## What sci_ext is")
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^\./scripts/dev\.sh test$", ci, flags=re.M)


def test_configuration_reference_matches_the_dataclasses():
    table = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "config_reference.py")], capture_output=True, text=True, check=True
    ).stdout
    readme = (REPO / "README.md").read_text()
    # Row by row: sections registered through register_section (rag, plugins) may come in any order.
    missing = [row for row in table.splitlines() if row not in readme.splitlines()]
    assert not missing, f"run scripts/config_reference.py and paste it into README.md; missing rows: {missing}"
