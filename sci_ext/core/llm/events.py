"""The events of LLM accounting: what telemetry, the kernel and the cache-savings counter listen to.

* :data:`on_llm_call` - one :class:`LLMCall` after every SDK call (ok, failed or refused by a budget).
* :data:`on_llm_saved` - one :class:`LLMSaved` when a cache hit replaced work that made LLM calls.
* :data:`on_budget_alert` - one :class:`BudgetAlert` when a budget passes ``llm.alert_ratio`` or is spent.

Nothing here imports an SDK, prometheus or IPython.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..events import Listeners, channel

__all__ = [
    "TOKEN_KINDS",
    "BudgetAlert",
    "LLMCall",
    "LLMSaved",
    "Subscription",
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

    provider: str  # who bills it (genai-prices id: openai, anthropic, aws, google, azure, ...)
    model: str  # the model that served it (the response's), else the one requested
    endpoint: str
    status: str  # ok | rate_limited | server_error | client_error | timeout | connection_error | error | blocked
    # | refused (a retry bound or an open breaker stopped an attempt before it was sent)
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
    model_requested: str = ""  # the model the call asked for ("" when it named none)
    attempts: int = 1  # HTTP attempts sent (the SDK's own retries included)
    rate_limited: int = 0  # attempts answered 429
    server_errors: int = 0  # attempts answered 5xx, timed out or cut off

    def models(self) -> tuple[str, ...]:
        """The served and requested model (a filter by model matches either)."""
        return (self.model, self.model_requested) if self.model_requested else (self.model,)

    def __post_init__(self) -> None:
        # Review R2: a secret inside a model or provider string (``ft:gpt-4o:<key>``) must reach
        # neither the usage book, status, panel, metric labels nor the history.  Every call is
        # built here before it is recorded, so redact here, like error messages (issue 18).
        from ..security.redact import get_redactor

        redact = get_redactor().redact
        self.provider, self.model, self.error = redact(self.provider), redact(self.model), redact(self.error)

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


class Subscription:
    """Listeners a module adds to these events together: ``install()`` (idempotent) and ``uninstall()``.

    The history writer and the metrics both listen to :data:`on_llm_call` and
    :data:`on_llm_saved`; this holds what each of them added, so neither repeats it.
    """

    def __init__(self, *pairs: tuple[Listeners[Any], Callable[[Any], Any]]) -> None:
        self._pairs = pairs
        self._removers: list[Callable[[], Any]] = []

    def install(self) -> None:
        """Add the listeners (once)."""
        if not self._removers:
            self._removers.extend(listeners.add(fn) for listeners, fn in self._pairs)

    def uninstall(self) -> None:
        """Remove them (what they already did stays done)."""
        while self._removers:
            self._removers.pop()()

    @property
    def installed(self) -> bool:
        """Whether the listeners are added now."""
        return bool(self._removers)
