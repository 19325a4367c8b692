"""What ``%sci_dashboard`` shows, as plain data: bounded time series and the latest status.

The dashboard samples :func:`sci_ext.core.telemetry.status.collect_status` (the same
dict ``/sci/api/status`` serves, see ``docs/status-api.md``) and keeps, per series, the
points of the last ``window`` seconds (a ``deque`` with a ``maxlen`` as well, so a
tiny interval cannot grow it without bound).  Widgets and the terminal summary both
read this model; it imports neither ipywidgets nor plotly.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SERIES", "DashboardModel", "format_bytes", "text_summary"]

#: series name -> (title, unit); the order is the order of the plots.
SERIES: dict[str, tuple[str, str]] = {
    "cpu_percent": ("CPU", "%"),
    "memory_percent": ("Memory", "%"),
    "cell_p95_seconds": ("Cell duration p95", "s"),
    "cache_hit_ratio": ("Cache hit ratio", "%"),  # percent, as the JupyterLab panel shows it
    "retries": ("Retries (total)", ""),
    "llm_cost_usd": ("LLM cost", "$"),
}

_MAX_POINTS = 3600


def _get(data: Mapping[str, Any] | None, *path: str) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def extract(status: Mapping[str, Any]) -> dict[str, float | None]:
    """One point per series from a status dict (``None`` where the status has no value)."""
    values: dict[str, Any] = {
        "cpu_percent": _get(status, "resources", "cpu_percent"),
        "memory_percent": _get(status, "resources", "memory", "percent"),
        "cell_p95_seconds": _get(status, "cells", "p95_seconds"),
        "cache_hit_ratio": _get(status, "cache", "hit_ratio"),
        "retries": _get(status, "retries", "total"),
        "llm_cost_usd": _get(status, "llm", "cost_usd"),
    }
    out = {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for k, v in values.items()}
    if out["cache_hit_ratio"] is not None:
        out["cache_hit_ratio"] = round(100.0 * out["cache_hit_ratio"], 1)
    return out


@dataclass
class DashboardModel:
    """Bounded series of the last ``window_seconds`` and the latest status."""

    window_seconds: float = 600.0
    times: deque[float] = field(default_factory=lambda: deque(maxlen=_MAX_POINTS))
    series: dict[str, deque[float | None]] = field(
        default_factory=lambda: {name: deque(maxlen=_MAX_POINTS) for name in SERIES}
    )
    latest: dict[str, Any] = field(default_factory=dict)
    samples: int = 0

    def add(self, status: Mapping[str, Any], now: float | None = None) -> None:
        """Append one sample and drop the points older than the window."""
        now = time.time() if now is None else now
        self.latest = dict(status)
        self.samples += 1
        self.times.append(now)
        for name, value in extract(status).items():
            self.series[name].append(value)
        while self.times and self.times[0] < now - self.window_seconds:
            self.times.popleft()
            for values in self.series.values():
                values.popleft()

    def visible_series(self) -> list[str]:
        """Series with at least one value (LLM cost only once LLM accounting reports)."""
        return [name for name, values in self.series.items() if any(v is not None for v in values)]


def format_bytes(value: Any) -> str:
    """``1.5 GiB`` and the like; ``-`` for missing values."""
    if not isinstance(value, (int, float)):
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - loop always returns


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _percent(ratio: Any) -> str:
    """A 0..1 ratio as the panel shows it (``75%``); ``-`` before any request."""
    return f"{100 * ratio:.0f}%" if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) else "-"


def text_summary(status: Mapping[str, Any], width: int = 100) -> str:
    """A one-screen text summary of a status dict (the dashboard outside a browser)."""
    lines = [f"sci_ext dashboard  status: {status.get('status', '?').upper()}  at {_when(status.get('time'))}"]
    checks = status.get("checks") or []
    if checks:
        lines.append("health: " + "  ".join(f"{c.get('name')}={c.get('status')}" for c in checks))
    res = status.get("resources") or {}
    mem = res.get("memory") or {}
    disk = res.get("disk") or {}
    lines.append(
        f"cpu {res.get('cpu_percent', '-')}%  memory {mem.get('percent', '-')}% "
        f"({format_bytes(mem.get('used_bytes'))} of {format_bytes(mem.get('total_bytes'))})  "
        f"disk free {format_bytes(disk.get('free_bytes'))}"
    )
    for gpu in res.get("gpus") or []:
        lines.append(f"gpu {gpu.get('index')} {gpu.get('name')}: {gpu.get('utilization_percent')}%")
    cells = status.get("cells") or {}
    cache = status.get("cache") or {}
    lines.append(
        f"cells {cells.get('total', 0)} (errors {cells.get('errors', 0)}, p95 {cells.get('p95_seconds', '-')} s)  "
        f"cache hits {cache.get('hits', 0)} misses {cache.get('misses', 0)} ratio {_percent(cache.get('hit_ratio'))}  "
        f"retries {_get(status, 'retries', 'total') or 0}"
    )
    llm = status.get("llm")
    if isinstance(llm, Mapping):
        lines.append(f"llm calls {llm.get('calls', 0)}  cost ${llm.get('cost_usd', 0) or 0:.4f}")
    breakers = status.get("breakers") or []
    if breakers:
        lines.append(
            "breakers: "
            + "  ".join(
                f"{b.get('name')}={b.get('state')}"
                + (f" (next try {_when(b.get('next_attempt_at'))})" if b.get("state") != "closed" else "")
                for b in breakers[:8]
            )
        )
    for alert in (status.get("alerts") or [])[:5]:
        lines.append(f"ALERT {alert.get('name')} ({alert.get('severity')}): {alert.get('summary')}")
    errors = status.get("errors") or []
    if errors:
        lines.append("recent errors:")
        for err in errors[:5]:
            text = (
                f"  {_when(err.get('time'))} {err.get('where')} {err.get('error_type')} [{err.get('correlation_id')}]"
            )
            lines.append(text[:width])
    return "\n".join(line[:width] if len(line) > width else line for line in lines)
