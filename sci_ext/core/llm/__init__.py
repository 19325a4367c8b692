"""LLM usage and cost: the openai and anthropic SDKs accounted without changing a call site.

In a script (the kernel extension does it on load)::

    from sci_ext.core import llm
    llm.instrument()

Then every call through the official SDKs is recorded (tokens, cost from the
``genai-prices`` table, duration, status, the cell's correlation id), checked
against the budgets before it is sent, and counted in :func:`get_llm_usage`,
``%sci_llm``, ``jupyter sci llm`` and the ``sci_llm_*`` metrics.  Modules:
:mod:`.patch` (SDK patching), :mod:`.extract` (usage fields), :mod:`.prices`,
:mod:`.usage` (the book), :mod:`.budgets`, :mod:`.savings` (cache hits),
:mod:`.history` (machine-wide SQLite), :mod:`.metrics`, :mod:`.events`.
"""

from __future__ import annotations

from ..errors import BudgetExceeded
from .events import BudgetAlert, LLMCall, LLMSaved, on_budget_alert, on_llm_call, on_llm_saved
from .patch import ensure, instrument, instrumented, uninstrument
from .usage import get_llm_usage

__all__ = [
    "BudgetAlert",
    "BudgetExceeded",
    "LLMCall",
    "LLMSaved",
    "ensure",
    "get_llm_usage",
    "instrument",
    "instrumented",
    "on_budget_alert",
    "on_llm_call",
    "on_llm_saved",
    "uninstrument",
]
