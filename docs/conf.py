"""Sphinx configuration of sci_ext's documentation site (MyST markdown, myst-nb, PyData theme).

Build: ``python -m sphinx -W --keep-going -n -b html docs docs/_build/html`` (``./scripts/dev.sh
docs``; ``./scripts/dev.sh test`` runs it). Warnings are errors, so a broken internal link, a
missing page or a docstring that does not parse fails the build. No network is used: external
links are not checked and there is no intersphinx.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # autodoc documents this checkout's sci_ext, not an installed copy

from sci_ext._version import __version__  # noqa: E402

# The notebooks are part of the site as docs/notebooks/, a copy made here on every build
# (git-ignored): Sphinx reads only files under docs/, and MyST resolves a symlink to its target
# outside docs/, so a symlinked folder would break links to the notebooks.
_NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
shutil.rmtree(_NOTEBOOKS, ignore_errors=True)
_NOTEBOOKS.mkdir()
for _notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
    shutil.copy2(_notebook, _NOTEBOOKS / _notebook.name)  # mtime kept: unchanged pages are not re-read

project = "sci_ext"
author = "sci_ext developers"
copyright = "sci_ext developers"
version = release = __version__

extensions = [
    "myst_nb",  # MyST markdown pages and the notebooks in notebooks/ (copied to docs/notebooks)
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

# The notebooks are rendered with the outputs stored in them (nbval checks those outputs in the
# test command); executing them here would double the build time and need a kernel.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "notebooks/.ipynb_checkpoints"]
suppress_warnings = [
    # Notebook outputs carry widget and plotly MIME types that have no static rendering here.
    "mystnb.unknown_mime_type",
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": False}
# -n checks every cross-reference; types from other libraries cannot resolve without intersphinx
# (no network), so only they are let through.
nitpick_ignore_regex = [
    (r"py:.*", r"(?!sci_ext\.).*"),
    (r"py:class", r"sci_ext\..*\.[A-Z]"),  # TypeVars (F, R) in signatures
    # The section dataclasses: their fields are the configuration reference page, not autodoc.
    (r"py:class", r"sci_ext\.core\.config\.[a-z_.]*[A-Z][A-Za-z]*Config"),
]

html_theme = "pydata_sphinx_theme"
html_title = f"sci_ext {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False


def _notebook_links(app: object, docname: str, source: list[str]) -> None:
    """Links written for GitHub's view of the repository work on the site too: a page's
    ``../notebooks/X.ipynb`` is the rendered notebook, a notebook's ``../docs/page.md`` the page
    (the notebooks are part of the site as ``docs/notebooks/``, the copy above)."""
    if docname.startswith("notebooks/"):
        source[0] = source[0].replace("](../docs/", "](../")
    else:
        source[0] = source[0].replace("](../notebooks/", "](notebooks/")


def setup(app: Any) -> None:
    """Register the link rewrite above."""
    app.connect("source-read", _notebook_links)
