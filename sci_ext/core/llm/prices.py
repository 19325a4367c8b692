"""Cost of a call from the maintained ``genai-prices`` table, or from ``llm.prices`` overrides.

Unknown models cost ``None`` (unknown), never a guess.  The table's own calculator
takes about 0.4 ms a call, too slow for the call path, so for each model this module
asks it once for the price of a few token vectors, checks that the price is linear
below the model's first price tier, and then prices calls with those rates (a few
multiplications).  Calls past a tier, or models whose price is not linear, go
through the table's calculator itself.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

__all__ = ["cost", "override_rates", "prewarm", "rates_for", "snapshot", "table_version", "unknown_note"]

_FIELDS = ("input", "cached_input", "cache_write", "output", "reasoning")
_GENAI_KEYS = {
    "input": "input_tokens",
    "cached_input": "cache_read_tokens",
    "cache_write": "cache_write_tokens",
    "output": "output_tokens",
    "reasoning": "output_reasoning_tokens",
}
_BASE = {"input": 4000, "cached_input": 0, "cache_write": 0, "output": 2000, "reasoning": 0}
_PROBE = {"input": 7000, "cached_input": 3000, "cache_write": 500, "output": 3000, "reasoning": 1000}

_lock = threading.Lock()
_rates: dict[tuple[str, str], Any] = {}
_UNKNOWN = object()


def table_version() -> str:
    """Which price table is in use, e.g. ``genai-prices 0.2.3 (bundled table)``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("genai-prices")
    except PackageNotFoundError:  # pragma: no cover - a runtime dependency
        return "genai-prices (not installed: every cost is unknown)"
    try:
        from genai_prices import data_snapshot

        snap = data_snapshot.get_snapshot()
        when = f"updated {snap.timestamp:%Y-%m-%d}" if snap.from_auto_update else "bundled table"
    except Exception:  # pragma: no cover - a table that cannot load prices nothing
        when = "table unavailable"
    return f"genai-prices {ver} ({when})"


_prewarmed: list[threading.Thread] = []


def prewarm() -> threading.Thread:
    """Load the table in a background thread (the import takes about a second); once per process."""
    with _lock:
        if not _prewarmed:
            thread = threading.Thread(target=_load_table, name="sci_ext-llm-prices", daemon=True)
            thread.start()
            _prewarmed.append(thread)
        return _prewarmed[0]


def _load_table() -> Any:
    try:
        from genai_prices import data_snapshot

        return data_snapshot.get_snapshot()
    except Exception:
        return None


def snapshot() -> Any:
    """The ``genai-prices`` table (loaded on first use), or None when it cannot load."""
    return _load_table()


_noted: set[tuple[str, str]] = set()


def unknown_note(provider: str, model: str) -> str | None:
    """The one line said once per process for a model no table prices (None after the first time)."""
    key = (provider, model)
    if key in _noted:
        return None
    with _lock:
        if key in _noted:
            return None
        _noted.add(key)
    return (
        f"sci_ext: no price for {model!r} of provider {provider!r} in {table_version()}: its calls have unknown "
        f"cost and budgets do not charge them; set one with llm.prices {model}=<input>/<output> "
        "(USD per million tokens)"
    )


def override_rates(model: str, overrides: dict[str, tuple[float, ...]]) -> tuple[float, float, float, float] | None:
    """``(input, output, cached_input, cache_write)`` USD per million tokens from ``llm.prices``, or None."""
    rates = overrides.get(model)
    if rates is None:
        return None
    inp, out = rates[0], rates[1]
    cached = rates[2] if len(rates) > 2 else inp
    write = rates[3] if len(rates) > 3 else inp
    return inp, out, cached, write


def _genai_usage(tokens: dict[str, int]) -> Any:
    from genai_prices import Usage

    return Usage(**{_GENAI_KEYS[k]: v for k, v in tokens.items() if v})


class _Linear:
    """Price = constant + sum(rate * tokens), valid while input < ``limit`` tokens."""

    __slots__ = ("constant", "fast", "full", "limit", "rates")

    def __init__(self, constant: Decimal, rates: dict[str, Decimal], limit: float, full: Any) -> None:
        self.constant = constant
        self.rates = rates
        self.limit = limit
        self.full = full
        # The same rates as floats, for the call path (exact Decimals stay for the linearity check).
        self.fast = (float(constant), {k: float(v) for k, v in rates.items()})


def rates_for(provider: str, model: str) -> Any:
    """The cached pricing of ``model`` (a :class:`_Linear`, a full calculator, or None if unknown)."""
    key = (provider, model)
    found = _rates.get(key, _UNKNOWN)
    if found is not _UNKNOWN:
        return found
    with _lock:
        found = _rates.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            found = _rates[key] = _build(provider, model)
    return found


def _build(provider: str, model: str) -> Any:
    from datetime import datetime, timezone

    snap = _load_table()
    if snap is None:
        return None
    try:
        prov, info = snap.find_provider_model(model, None, provider, None)
    except (LookupError, ValueError):
        return None
    now = datetime.now(tz=timezone.utc)

    def full(tokens: dict[str, int]) -> Decimal:
        result: Decimal = info.calc_price(_genai_usage(tokens), prov).total_price
        return result

    try:
        prices = info.get_prices(now)
        tier_starts = [tier.start for value in vars(prices).values() if hasattr(value, "tiers") for tier in value.tiers]
        base = full(_BASE)
        rates = {}
        for kind in _FIELDS:
            bumped = dict(_BASE)
            bumped[kind] += 1000
            rates[kind] = (full(bumped) - base) / 1000
        constant = base - sum((rates[k] * _BASE[k] for k in _FIELDS), Decimal(0))
        linear = _Linear(constant, rates, min(tier_starts, default=float("inf")), full)
        if _linear_price(linear, _PROBE) != full(_PROBE):
            return full  # not linear (an unusual price shape): always ask the table
        return linear
    except Exception:
        return full


def _linear_price(linear: _Linear, tokens: dict[str, int]) -> Decimal:
    total = linear.constant
    for kind, count in tokens.items():
        if count:
            total += linear.rates[kind] * count
    return total


def cost(provider: str, model: str, tokens: dict[str, int], overrides: dict[str, tuple[float, ...]]) -> float | None:
    """USD cost of a call that used ``tokens`` (kinds of :data:`~.events.TOKEN_KINDS`), or None if unknown."""
    if not tokens:
        return None
    own = override_rates(model, overrides)
    if own is not None:
        inp, out, cached, write = own
        n_in = tokens.get("input", 0)
        n_cached = tokens.get("cached_input", 0)
        n_write = tokens.get("cache_write", 0)
        uncached = max(n_in - n_cached - n_write, 0)
        return (uncached * inp + n_cached * cached + n_write * write + tokens.get("output", 0) * out) / 1e6
    pricing = rates_for(provider, model)
    if pricing is None:
        return None
    try:
        if isinstance(pricing, _Linear):
            if tokens.get("input", 0) < pricing.limit:
                total, rates = pricing.fast
                for kind, count in tokens.items():
                    if count:
                        total += rates[kind] * count
                return total
            return float(pricing.full(tokens))
        return float(pricing(tokens))
    except Exception:  # a usage the table cannot price: unknown, not a guess
        return None
