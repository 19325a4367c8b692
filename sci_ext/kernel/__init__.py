"""The IPython side of sci_ext: magics and kernel hooks.

Each feature lives in its own module with a ``register(ipython, state)`` function;
:data:`FEATURE_MODULES` lists them.  Magics of features that have not landed yet
are registered by :mod:`.unavailable`, which says so plainly instead of faking them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .state import KernelState

__all__ = ["FEATURE_MODULES", "KernelState", "load", "unload"]

#: One module per feature; each defines ``register(ipython, state)``.
FEATURE_MODULES: list[str] = [
    "sci_ext.kernel.config_magics",
    "sci_ext.kernel.telemetry_hooks",
    "sci_ext.kernel.cache_magics",
    "sci_ext.kernel.guard_magics",
    "sci_ext.kernel.secret_magics",
    "sci_ext.kernel.llm_magics",
    "sci_ext.kernel.dashboard_magics",
    "sci_ext.kernel.health_magics",
    "sci_ext.kernel.magic_help",  # after the magics it gives --help to
    "sci_ext.kernel.unavailable",
]


def load(ipython: Any) -> None:
    """Register every feature's magics and hooks on ``ipython`` (idempotent)."""
    state = KernelState.get(ipython)
    if state.loaded:
        return
    tables = ipython.magics_manager.magics
    before = {kind: set(table) for kind, table in tables.items()}
    for name in FEATURE_MODULES:
        importlib.import_module(name).register(ipython, state)
    added = {kind: set(table) - before.get(kind, set()) for kind, table in tables.items()}
    # After %unload_ext no sci_ext magic is left behind (hooks and redaction are gone too).
    state.on_close(lambda: _remove_magics(ipython, added))
    state.loaded = True


def _remove_magics(ipython: Any, added: dict[str, set[str]]) -> None:
    for kind, names in added.items():
        table = ipython.magics_manager.magics.get(kind, {})
        for name in names:
            table.pop(name, None)


def unload(ipython: Any) -> None:
    """Undo :func:`load`: unregister hooks and stop background work."""
    state = KernelState.get(ipython)
    state.close()
