"""The events of LLM accounting: what telemetry, the kernel and the cache-savings counter listen to.

* :data:`on_llm_call` - one :class:`LLMCall` after every SDK call (ok, failed or refused by a budget).
* :data:`on_llm_saved` - one :class:`LLMSaved` when a cache hit replaced work that made LLM calls.
* :data:`on_budget_alert` - one :class:`BudgetAlert` when a budget passes ``llm.alert_ratio`` or is spent.

Nothing here imports an SDK, prometheus or IPython.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import Listeners, channel

__all__ = [
    "TOKEN_KINDS",
    "BudgetAlert",
    "LLMCall",
    "LLMSaved",
    "on_budget_alert",
    "on_llm_call",
    "on_llm_saved",
]

#: Token kinds, the ``kind`` label of ``sci_llm_tokens_total``.  ``input`` counts every prompt
#: token (the cached and cache-written ones included), ``output`` every generated token (the
#: reasoning ones included), so the other kinds are parts of those two.
TOKEN_KINDS = ("input", "cached_input", "cache_write", "output", "reasoning")


@dataclass
class LLMCall:
    """One request through an SDK: counts and timing only, never a prompt or a response."""

    provider: str
    model: str
    endpoint: str
    status: str  # ok | rate_limited | server_error | client_error | timeout | connection_error | error | blocked
    started: float  # unix time
    duration: float  # seconds, until the last stream event for streams
    input: int | None = None
    cached_input: int | None = None
    cache_write: int | None = None
    output: int | None = None
    reasoning: int | None = None
    cost_usd: float | None = None  # None: unknown model or no usage reported
    correlation_id: str | None = None
    kernel_id: str | None = None
    stream: bool = False
    error: str = ""  # the exception class name of a failed call

    def tokens(self) -> dict[str, int]:
        """The reported token counts by kind (kinds not reported are left out)."""
        out = {}
        for kind in TOKEN_KINDS:
            value = getattr(self, kind)
            if value is not None:
                out[kind] = value
        return out


@dataclass(frozen=True)
class LLMSaved:
    """A cache hit served work whose computation made ``calls`` LLM calls costing ``cost_usd``."""

    source: str  # cell | function
    name: str
    calls: int
    cost_usd: float
    unknown_cost_calls: int = 0
    correlation_id: str | None = None


@dataclass(frozen=True)
class BudgetAlert:
    """A budget passed its alert ratio (``level="warning"``) or is spent (``level="exceeded"``)."""

    budget: str
    spent_usd: float
    limit_usd: float
    level: str


on_llm_call: Listeners[LLMCall] = Listeners("llm_call")
on_llm_saved: Listeners[LLMSaved] = Listeners("llm_saved")
# Named channels: the kernel subscribes at %load_ext without importing the LLM package.
on_budget_alert: Listeners[BudgetAlert] = channel("llm_budget_alert")
