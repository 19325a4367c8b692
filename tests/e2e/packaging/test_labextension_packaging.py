"""The JupyterLab extension ``sci-ext`` is built into the wheel and enabled by installing it.

The wheel is built from this checkout without build isolation (the build hook finds the
bundle ``scripts/dev.sh`` / ``pip install -e .`` built and rebuilds it only when
``labextension/src`` is newer).  The browser tests (``tests/e2e/browser``) check what it does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[3]
LABEXT = "share/jupyter/labextensions/sci-ext"


def test_package_and_pyproject_agree() -> None:
    package = json.loads((REPO / "labextension" / "package.json").read_text())
    assert package["name"] == "sci-ext"
    assert package["jupyterlab"]["outputDir"] == "../sci_ext/labextension"
    assert "@jupyter/builder" in package["devDependencies"]  # @jupyterlab/builder 4.x fails with Lab 4.6
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    shared = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert shared["sci_ext/labextension"] == LABEXT
    kwargs = pyproject["tool"]["hatch"]["build"]["hooks"]["jupyter-builder"]["build-kwargs"]
    assert kwargs["path"] == "labextension" and kwargs["build_dir"] == "sci_ext/labextension"
    # No skip-if-exists: it shipped a stale bundle when one was left in the tree.
    assert "skip-if-exists" not in pyproject["tool"]["hatch"]["build"]["hooks"]["jupyter-builder"]
    assert (REPO / "labextension" / "yarn.lock").is_file()
    assert "nodeLinker: node-modules" in (REPO / "labextension" / ".yarnrc.yml").read_text()


def test_settings_schema() -> None:
    schema = json.loads((REPO / "labextension" / "schema" / "plugin.json").read_text())
    refresh = schema["properties"]["refreshInterval"]
    assert (refresh["type"], refresh["default"], refresh["minimum"]) == ("number", 5, 1)
    assert schema["additionalProperties"] is False


def test_build_outputs_are_not_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "labextension", "sci_ext/labextension"], cwd=REPO, capture_output=True, text=True
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    files = tracked.stdout.split()
    assert "labextension/yarn.lock" in files
    assert not [f for f in files if f.startswith(("labextension/node_modules/", "labextension/lib", "sci_ext/"))]


@pytest.mark.slow
def test_wheel_ships_the_labextension(built_wheel: Path) -> None:
    wheel = built_wheel
    with zipfile.ZipFile(wheel) as zf:
        names = [n.split(".data/data/", 1)[1] for n in zf.namelist() if ".data/data/" in n]
        package = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith(f"{LABEXT}/package.json"))))
    assert f"{LABEXT}/install.json" in names
    assert f"{LABEXT}/static/style.js" in names
    assert any(n.startswith(f"{LABEXT}/static/remoteEntry.") for n in names), names
    assert f"{LABEXT}/schemas/sci-ext/plugin.json" in names
    assert package["name"] == "sci-ext" and "_build" in package["jupyterlab"]
    # The bundle is not also copied into the Python package.
    assert not [n for n in zf.namelist() if n.startswith("sci_ext/labextension/")]


@pytest.mark.slow
def test_jupyter_labextension_list_shows_it_enabled() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, timeout=120
    )
    listing = out.stdout + out.stderr
    line = next((ln for ln in listing.splitlines() if "sci-ext" in ln), "")
    assert "enabled" in line and "OK" in line, listing
