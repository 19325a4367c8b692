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


def pytest_itemcollected(item: pytest.Item) -> None:
    # `-m "not kernel"` skips every test that starts a real kernel through the kernel fixtures.
    if {"kernel", "kernel_factory", "kernel_pool"} & set(getattr(item, "fixturenames", ())):
        item.add_marker(pytest.mark.kernel)
