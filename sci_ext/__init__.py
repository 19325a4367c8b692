"""sci_ext: reliable, secure and observable Jupyter notebooks for AI-driven research.

``%load_ext sci_ext`` registers the magics; ``from sci_ext import ...`` gives the
library (the same names as :mod:`sci_ext.core`).  Importing this package is cheap:
every feature loads on first use.
"""

from __future__ import annotations

import logging
from typing import Any

from ._version import __version__

# A library leaves logging configuration to the application.
logging.getLogger("sci_ext").addHandler(logging.NullHandler())

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Called by jupyter_server: the ``SciExt`` extension app (imported only then)."""
    from .server.app import SciExt

    return [{"module": "sci_ext.server.app", "app": SciExt}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Called by ``jupyter labextension develop``: the built JupyterLab extension ``sci-ext``."""
    return [{"src": "labextension", "dest": "sci-ext"}]


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext sci_ext``: register the magics and kernel hooks."""
    from .kernel import load
    from .kernel.state import KernelState

    load(ipython)
    KernelState.get(ipython).user_loaded = True  # the notebook asked for sci_ext: its notices too


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext sci_ext``: remove the kernel hooks."""
    from .kernel import unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    # Re-export the library lazily so `import sci_ext` does not import it all.
    # (importlib, not `from . import core`: that probes this very __getattr__ and recurses.)
    import importlib

    core = importlib.import_module(f"{__name__}.core")

    try:
        return getattr(core, name)
    except AttributeError:
        raise AttributeError(f"module 'sci_ext' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    import importlib

    core = importlib.import_module(f"{__name__}.core")

    return sorted(set(globals()) | set(core.__all__))
