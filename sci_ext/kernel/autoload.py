"""The extension that kernels started for auto mode load (``--ext=sci_ext.kernel.autoload``).

Notebook runners (``pytest --nbval --sci-cache``, ``jupyter sci run``) start kernels with
sci_ext already loaded.  Loading it under this other name keeps a notebook's own
``%load_ext sci_ext`` silent, as in a plain run (IPython would print "already loaded");
:func:`sci_ext.kernel.load` is idempotent, so that second load changes nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Load sci_ext (magics, hooks, auto mode) into ``ipython``."""
    from . import load
    from .state import KernelState

    load(ipython)
    KernelState.get(ipython).started_by_runner = True
