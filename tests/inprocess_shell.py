"""The process's one in-process IPython shell, with sci_ext freshly loaded (in-process tests)."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell


def freshly_loaded_shell() -> InteractiveShell:
    """The shell (made here, or by another in-process test file) after ``%unload_ext`` + ``%load_ext sci_ext``.

    A fresh load: every sci_ext magic is a stand-in again and no hook of an earlier test remains.
    """
    from IPython.testing.globalipapp import get_ipython as start_ipython

    from sci_ext.kernel import KernelState

    shell = InteractiveShell.instance() if InteractiveShell.initialized() else start_ipython()
    if KernelState.get(shell).loaded:
        shell.run_line_magic("unload_ext", "sci_ext")
    shell.run_line_magic("load_ext", "sci_ext")
    return shell
