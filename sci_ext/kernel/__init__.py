"""The IPython side of sci_ext: magics and kernel hooks.

``%load_ext sci_ext`` (:func:`load`) does two things, both light (the budget is a
quarter of ``import IPython``; ``tests/kernel/test_load_budget.py`` lists what it may import):

* it installs the hooks that must act from the first cell on, one module each in
  :data:`FEATURE_MODULES` (``register(ipython, state)``): correlation ids and cell
  telemetry, output redaction, the LLM cell notices and SDK import watch, the config
  files' hot reload, auto mode's input transformer (``%sci_cache auto``) and the
  shortcut that spares a cell magic's cell IPython's no-op token transforms, and the
  memo of ipykernel's (pure-Python hashed) cell file names;
* it registers every magic *by name* (:mod:`.lazy`): a magic's module loads at its
  first use.

Everything else (the configuration, the cache engine, the vault, the LLM book,
prometheus_client, the monitor thread) starts when a cell first needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from .state import KernelState

__all__ = ["FEATURE_MODULES", "KernelState", "load", "unload"]

#: The hooks installed at load, in this order; each module defines ``register(ipython, state)``.
#: Telemetry first: its ``pre_run_cell`` binds the correlation id the others read.
FEATURE_MODULES: list[str] = [
    "sci_ext.kernel.telemetry_hooks",
    "sci_ext.kernel.redaction",
    "sci_ext.kernel.llm_cells",
    "sci_ext.kernel.config_watch",
    "sci_ext.kernel.cellcache.auto",
    "sci_ext.kernel.cell_magic_fastpath",
    "sci_ext.kernel.cell_names",
    "sci_ext.kernel.lazy",
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
