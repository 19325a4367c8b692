"""Magics registered by name at ``%load_ext``, their implementation imported at first use.

``%load_ext sci_ext`` must cost a fraction of ``import IPython``; importing every magic
module (argparse parsers, the config schema, the cache engine, the vault...) would cost
more than the rest of the load together.  So :func:`register` puts a :class:`LazyMagic`
under each name of :data:`LAZY_MAGICS`: ``%lsmagic``, completion and ``%unload_ext``
see the names at once.  The first call of any magic of a module (or ``%magic?``)
imports that module and calls its ``register(ipython, state)``, which replaces the
stand-ins with the real magics; the call then goes on to the real one, and every
later call reaches it directly (no indirection left).

The table names only the magic modules, never what they import: a feature may move
its engine around freely; moving the magic module means changing one string here
(``tests/kernel/test_lazy_magics_inprocess.py`` checks the table against the modules).
"""

from __future__ import annotations

import importlib
from typing import Any

from .state import KernelState

__all__ = ["LAZY_MAGICS", "NO_VAR_EXPAND", "LazyMagic", "register"]

#: magic module -> the (kind, name) of every magic its ``register(ipython, state)`` registers.
LAZY_MAGICS: dict[str, tuple[tuple[str, str], ...]] = {
    "sci_ext.kernel.config_magics": (("line", "sci_config"),),
    "sci_ext.kernel.cache_magics": (("cell", "cached"), ("cell", "nocache"), ("line", "sci_cache")),
    "sci_ext.kernel.guard_magics": (("cell", "guarded"),),
    "sci_ext.kernel.secret_magics": (("line", "sci_secret"),),
    "sci_ext.kernel.llm_magics": (("line", "sci_llm"),),
    "sci_ext.kernel.dashboard_magics": (("line", "sci_dashboard"),),
    "sci_ext.kernel.health_magics": (("line", "sci_health"),),
}

#: The magics that expand ``$name`` / ``{expr}`` in their line themselves (IPython's
#: ``@no_var_expand``): their stand-ins say so too, or the first call would expand twice.
NO_VAR_EXPAND: frozenset[tuple[str, str]] = frozenset({("cell", "guarded")})

#: The attribute IPython's ``no_var_expand`` sets (``IPython.core.magic.MAGIC_NO_VAR_EXPAND_ATTR``).
_NO_VAR_EXPAND_ATTR = "_ipython_magic_no_var_expand"


class LazyMagic:
    """Stands in for one magic until its module is imported."""

    def __init__(self, ipython: Any, state: KernelState, module: str, kind: str, name: str) -> None:
        self.ipython = ipython
        self.state = state
        self.module = module
        self.kind = kind
        self.name = name
        self.__name__ = name  # what IPython and inspect show
        if (kind, name) in NO_VAR_EXPAND:
            setattr(self, _NO_VAR_EXPAND_ATTR, True)

    def resolve(self) -> Any:
        """Import the module, register its real magics, and return the one this stands in for."""
        table = self.ipython.magics_manager.magics[self.kind]
        current = table.get(self.name)
        if current is not self:  # already resolved (e.g. by another magic of the module)
            return current
        importlib.import_module(self.module).register(self.ipython, self.state)
        from . import magic_help

        magic_help.register(self.ipython, self.state)  # --help on the magics just registered
        real = table.get(self.name)
        if real is None or real is self:
            raise RuntimeError(f"{self.module}.register did not register the {self.kind} magic {self.name!r}")
        return real

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        return self.resolve()(*args, **kwargs)

    def getdoc(self) -> str | None:
        """The real magic's docstring (``%magic?`` asks for it through IPython's ``getdoc`` hook)."""
        return getattr(self.resolve(), "__doc__", None)

    def __repr__(self) -> str:
        prefix = "%%" if self.kind == "cell" else "%"
        return f"<sci_ext magic {prefix}{self.name} (loads {self.module} on first use)>"


def register(ipython: Any, state: KernelState) -> None:
    """Register a :class:`LazyMagic` for every name in :data:`LAZY_MAGICS`."""
    tables = ipython.magics_manager.magics
    for module, magics in LAZY_MAGICS.items():
        for kind, name in magics:
            tables[kind][name] = LazyMagic(ipython, state, module, kind, name)
