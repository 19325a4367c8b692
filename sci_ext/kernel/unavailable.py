"""Magics whose features have not landed yet: they say so instead of pretending.

When a feature lands, its module is added to ``FEATURE_MODULES`` and its magics
are removed from :data:`PENDING`.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from .state import KernelState

__all__ = ["PENDING", "register"]

#: magic name -> (kind, what it will do)
PENDING: dict[str, tuple[str, str]] = {}


def _make(name: str, what: str) -> Any:
    def magic(line: str = "", cell: str | None = None) -> None:
        raise UsageError(f"%{name} ({what}) is not available in sci_ext yet")

    magic.__doc__ = f"Not available yet: {what}."
    return magic


def register(ipython: Any, state: KernelState) -> None:
    """Register a clear 'not available yet' magic for every pending feature."""
    for name, (kind, what) in PENDING.items():
        ipython.register_magic_function(_make(name, what), magic_kind=kind, magic_name=name)
