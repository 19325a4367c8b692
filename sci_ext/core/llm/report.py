"""Text for people: money, durations, the per-model table, ``--since`` values."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

__all__ = ["HEADER", "money", "notice", "parse_since", "table_rows"]

HEADER = [
    "provider", "model", "calls", "errors", "attempts", "input", "cached", "cache write", "output", "reasoning",
    "cost", "p50", "p95",
]  # fmt: skip

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def money(value: float | None) -> str:
    """``$0.42``; small amounts keep their digits (``$0.000345``); None is ``unknown``."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if abs(value) >= 0.1:
        return f"${value:,.2f}"
    return f"${value:.6f}".rstrip("0")


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def table_rows(usage: dict[str, Any]) -> list[list[Any]]:
    """The rows of ``%sci_llm`` / ``jupyter sci llm`` from a :func:`~.usage.get_llm_usage` dict."""
    rows = []
    for row in [*usage["models"], usage["total"]] if usage["models"] else []:
        cost = money(row["cost_usd"])
        if row.get("unknown_cost_calls") and row["cost_usd"] is not None:
            cost += f" (+{row['unknown_cost_calls']} unknown)"
        errors = str(row["errors"]) + (f" (+{row['blocked']} blocked)" if row.get("blocked") else "")
        if row.get("refused"):
            errors += f" ({row['refused']} refused)"
        tries = str(row.get("attempts", row["calls"]))
        retried = [
            f"{row[k]} {label}" for k, label in (("rate_limited", "429"), ("server_errors", "5xx")) if row.get(k)
        ]
        if retried:
            tries += f" ({', '.join(retried)})"
        model = row["model"] + (f" (asked: {', '.join(row['requested'])})" if row.get("requested") else "")
        rows.append([
            row["provider"], model, row["calls"], errors, tries, row["input"], row["cached_input"],
            row["cache_write"], row["output"], row["reasoning"], cost,
            _seconds(row["p50_seconds"]), _seconds(row["p95_seconds"]),
        ])  # fmt: skip
    return rows


def parse_since(text: str, now: float | None = None) -> float:
    """``--since`` as a unix time: ``30s``, ``10m``, ``2h``, ``1d`` ago, or an ISO date/time."""
    now = time.time() if now is None else now
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a duration (30s, 10m, 2h, 1d) or an ISO time (2026-12-01T09:00)"
        ) from None


def notice(calls: int, cost: float | None, unknown: int = 0) -> str:
    """``14 calls, $0.42`` (with the calls of unknown cost said)."""
    text = f"{calls} call{'s' if calls != 1 else ''}, {money(cost)}"
    if unknown and cost is not None:
        text += f" (+{unknown} of unknown cost)"
    return text
