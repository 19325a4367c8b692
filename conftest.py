"""Session-wide setup for the whole test run, notebooks included.

nbval starts the notebooks' kernels with this process's environment, so isolate
it here: private XDG directories (no test ever reads or writes the real
``~/.config/sci_ext``) and this checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    root = Path(tempfile.mkdtemp(prefix="sci_ext-test-"))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        path = root / var.lower()
        path.mkdir(mode=0o700)
        os.environ[var] = str(path)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    # The notebooks use a vault passphrase from the environment (they cannot type into getpass).
    os.environ.setdefault("SCI_EXT_VAULT_PASSPHRASE", "notebook-test-passphrase")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # The venv's scripts first on PATH (jlpm, jupyter-builder for wheel builds; jupyter for
    # subprocesses), also when pytest runs as .venv/bin/python -m pytest without activation.
    scripts = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join(filter(None, [scripts, os.environ.get("PATH", "")]))


# xdist (`-n 2 --dist loadgroup`): tests that share a module- or session-scoped resource run in
# one worker, so it starts once: a notebook's cells share its kernel (nbval); a browser module
# shares its JupyterLab; the packaging modules share the session wheel; the cross-user tests share
# two real Unix users' home directories; the Prometheus/real-server modules their servers.
_GROUPED_DIRS = ("tests/server/", "tests/e2e/browser/")
_ONE_GROUP_DIRS = {"tests/e2e/security/": "cross-user", "tests/e2e/packaging/": "wheel"}


def _xdist_group(relpath: str) -> str | None:
    if relpath.endswith(".ipynb"):
        return relpath
    for folder, group in _ONE_GROUP_DIRS.items():
        if relpath.startswith(folder):
            return group
    if relpath.startswith(_GROUPED_DIRS):
        return relpath
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kernel_fixtures = {"kernel", "kernel_factory", "kernel_pool"}
    for item in items:
        relpath = Path(str(item.path)).resolve().relative_to(REPO).as_posix() if REPO in item.path.parents else ""
        group = _xdist_group(relpath)
        if group is not None and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
        # `-m "not kernel"` (the fast tier) must skip every test that starts a real kernel.
        if kernel_fixtures & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kernel)
