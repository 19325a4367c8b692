"""README.md and docs/ keep their promises: two commands first, a short README whose links resolve,
no invented URL, and a configuration reference that matches the code."""

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


def test_readme_is_a_front_page_whose_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert "docs/tutorial.md" in links and "CONTRIBUTING.md" in links and "CHANGELOG.md" in links
    for link in links:
        assert not link.startswith(("http:", "https:")), f"README links outside the repository: {link}"
        assert (REPO / link).exists(), f"README links to {link}, which does not exist"


def test_no_invented_project_url():
    """Nobody checked that a public repository exists: install from a clone, name no URL for it."""
    pages = [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
    for path in [*pages, REPO / "pyproject.toml", REPO / "labextension" / "package.json"]:
        text = path.read_text()
        assert "github.com/sci-ext" not in text and "git+http" not in text, path
    assert "[project.urls]" not in (REPO / "pyproject.toml").read_text()


def test_configuration_reference_matches_the_dataclasses():
    table = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "config_reference.py")], capture_output=True, text=True, check=True
    ).stdout
    page = (REPO / "docs" / "config-reference.md").read_text().splitlines()
    # Row by row: sections registered through register_section (rag, plugins) may come in any order.
    missing = [row for row in table.splitlines() if row not in page]
    extra = [row for row in page if row.startswith("| `") and row not in table.splitlines()]
    assert not missing and not extra, f"run: python scripts/config_reference.py --write; {missing=} {extra=}"


def test_every_docs_page_is_reachable_from_the_site_index():
    """Sphinx fails on a page in no toctree; this says which page, without building the site."""
    index = (REPO / "docs" / "index.md").read_text()
    toctree = index[index.index("```{toctree}") :]
    # The toctree ends with `*` (pages other than those listed, in name order: development.md and
    # any page added later), so a new page is on the site without editing the index.
    assert toctree.rstrip().endswith("\n*\n```"), toctree
    tutorial = (REPO / "docs" / "tutorial.md").read_text()
    assert ":glob:\n\nnotebooks/*\n" in tutorial, "docs/tutorial.md lists every notebook (a glob)"
