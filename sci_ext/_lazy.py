"""Lazy exports (PEP 562): a package names what it offers; each name loads on first use.

``import sci_ext`` and ``%load_ext sci_ext`` must stay light, yet ``from sci_ext.core
import get_config`` must work.  A package that re-exports names from its submodules
lists them, name -> submodule, and gets its module-level ``__getattr__`` and
``__dir__`` from :func:`lazy_exports` (the pattern of ``lazy_loader``, without the
dependency)::

    _EXPORTS = {"get_config": "config", "retry_with_backoff": "resilience"}
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

The first access imports the submodule and stores the value in the package, so every
later access is a plain attribute lookup.  Type checkers see the names through the
package's ``if TYPE_CHECKING:`` imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``(__getattr__, __dir__)`` of ``package``.

    ``exports`` maps each public name to the submodule (relative to ``package``) that
    defines it; ``submodules`` are submodule names that ``from package import name``
    may ask for as attributes before they were imported.  Any other name is an
    ``AttributeError`` naming the package, as for a module without ``__getattr__``.
    """
    namespace = sys.modules[package].__dict__  # the package is importing: it is in sys.modules
    known = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            if name in known:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later lookups find it without calling __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
