"""Former home of the ``%%cached`` engine, now :mod:`sci_ext.kernel.cellcache`.

Kept so code written against it (``from sci_ext.kernel.cached_cell import SESSION``) still works.
"""

from __future__ import annotations

from .cellcache.plan import CellOptions, cell_key, hash_inputs, input_names
from .cellcache.run import run_cached_cell
from .cellcache.session import SESSION, CellRun

__all__ = ["SESSION", "CellOptions", "CellRun", "cell_key", "hash_inputs", "input_names", "run_cached_cell"]
