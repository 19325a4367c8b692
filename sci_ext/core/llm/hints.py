"""How to change a setting, said for where the code runs: the magics in a kernel, else env/file/library call.

A ``BudgetExceeded`` in a plain script that says "run ``%sci_config``" helps nobody;
:func:`how_to_set` names the environment variable, the config file key and the library
call there, and the magic in a kernel with sci_ext loaded.
"""

from __future__ import annotations

import sys

__all__ = ["env_name", "how_to_set", "in_kernel"]


def in_kernel() -> bool:
    """True when an IPython shell with sci_ext's kernel extension loaded runs this process."""
    if "sci_ext.kernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    try:
        return get is not None and get() is not None
    except Exception:  # an IPython in a strange state: say it the script way
        return False


def env_name(dotted: str) -> str:
    """``llm.budget_usd`` -> ``SCI_EXT_LLM__BUDGET_USD``."""
    return "SCI_EXT_" + "__".join(part.upper() for part in dotted.split("."))


def how_to_set(dotted: str, example: str) -> str:
    """``"%sci_config llm.budget_usd=5"`` in a kernel; the three script ways otherwise."""
    if in_kernel():
        return f"%sci_config {dotted}={example}"
    section, _, key = dotted.partition(".")
    return (
        f"{env_name(dotted)}={example} in the environment, {key} = {example} under [{section}] in "
        f"sci_ext's config file, or sci_ext.core.config.get_config_manager().set({dotted!r}, {example})"
    )
