"""Modules a test module uses, imported at their first use rather than when pytest collects it.

Every pytest worker imports every test module to collect it; ``anthropic`` and ``openai`` alone
cost about 2 s of CPU there, in each worker, for the one worker that runs their tests.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name``: the first attribute read imports it (the normal import)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):  # pytest's collection probes for markers: not a use
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported at first use>"
