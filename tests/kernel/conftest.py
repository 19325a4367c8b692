"""The kernel tier's in-process shell: IPython's test shell, made before any test asks for one."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _global_test_shell() -> None:
    """Start :mod:`IPython.testing.globalipapp`'s shell first in each test process.

    The in-process tests reach one shell two ways: ``globalipapp.get_ipython()`` (a
    ``TerminalInteractiveShell``) and ``InteractiveShell.instance()``.  Made first, the test
    shell is the singleton both return.  If a plain ``InteractiveShell.instance()`` came first
    (module order differs between workers and runs), ``globalipapp`` failed half-way and
    returned ``None`` to every later module.
    """
    from IPython.testing.globalipapp import start_ipython

    start_ipython()
