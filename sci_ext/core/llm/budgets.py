"""Budgets: ``llm.budget_usd`` for this kernel, named ``llm.budgets`` for the machine (or Redis).

A call is checked before it is sent: once a budget's spend has reached its limit,
the call raises :class:`~sci_ext.core.errors.BudgetExceeded` and never reaches the
provider.  The cost of a call is known only after it returns, so the call that
crosses the limit completes and the next one is refused.  Named budgets live in the
shared record store of breakers (``core.state_dir/llm_budgets``, or Redis with
``llm.redis_url``), so every kernel charging the same name shares one spend.
Calls of unknown cost are not charged (they have no price to charge).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..errors import BudgetExceeded
from . import hints
from .events import BudgetAlert, on_budget_alert
from .report import money
from .settings import LLMSettings

__all__ = ["BudgetExceeded", "charge", "check", "kernel_spent", "reset", "status"]

NAMESPACE = "llm_budgets"

_lock = threading.Lock()
_kernel = {"spent": 0.0}


def _store(settings: LLMSettings) -> Any:
    from ..resilience.store import resolve_store

    return resolve_store(None, NAMESPACE, settings.redis_url)


def _named_spent(store: Any, name: str) -> float:
    record = store.load(name)
    return float(record.get("spent", 0.0)) if record else 0.0


def kernel_spent() -> float:
    """USD charged to this kernel's budget since it started (or the last reset)."""
    return _kernel["spent"]


def check(settings: LLMSettings, what: str) -> None:
    """Raise :class:`BudgetExceeded` if any budget that applies is spent (``what`` names the call)."""
    limit = settings.budget_usd
    if limit is not None and _kernel["spent"] >= limit:
        spent = _kernel["spent"]
        raise BudgetExceeded(
            f"LLM budget of this {'kernel' if hints.in_kernel() else 'process'} is spent: {money(spent)} of "
            f"{money(limit)} (llm.budget_usd); {what} was not sent. Raise it with "
            f"{hints.how_to_set('llm.budget_usd', '<USD>')} "
            + (
                "(or start the count over with %sci_llm --reset)"
                if hints.in_kernel()
                else "(or start the count over with sci_ext.core.llm.budgets.reset(settings))"
            ),
            budget="kernel",
            spent_usd=spent,
            limit_usd=limit,
        )
    if not settings.budgets:
        return
    store = _store(settings)
    for name, limit in settings.budgets.items():
        spent = _named_spent(store, name)
        if spent >= limit:
            raise BudgetExceeded(
                f"LLM budget {name!r} is spent: {money(spent)} of {money(limit)} (shared by every kernel using it, "
                f"{store.description}); {what} was not sent. Raise it in llm.budgets ({name}=<USD>, e.g. "
                f"{hints.how_to_set('llm.budgets', f'{name}={max(limit * 2, 1):g}')}) or start it over with "
                f"'jupyter sci llm --reset-budget {name}'",
                budget=name,
                spent_usd=spent,
                limit_usd=limit,
            )


def _crossed(before: float, after: float, limit: float, ratio: float) -> str | None:
    if after >= limit > before:
        return "exceeded"
    if after >= limit * ratio > before:
        return "warning"
    return None


def charge(settings: LLMSettings, cost_usd: float) -> None:
    """Add ``cost_usd`` to every budget that applies; alert when one passes its ratio or limit."""
    if cost_usd <= 0:
        return
    alerts = []
    with _lock:
        before = _kernel["spent"]
        _kernel["spent"] = after = before + cost_usd
    if settings.budget_usd is not None:
        level = _crossed(before, after, settings.budget_usd, settings.alert_ratio)
        if level:
            alerts.append(BudgetAlert("kernel", after, settings.budget_usd, level))
    if settings.budgets:
        store = _store(settings)
        for name, limit in settings.budgets.items():

            def add(record: dict[str, Any] | None) -> dict[str, Any]:
                spent = float(record.get("spent", 0.0)) if record else 0.0
                return {"spent": spent + cost_usd, "updated": time.time()}

            new = store.update(name, add)
            after_named = float(new["spent"]) if new else cost_usd
            level = _crossed(after_named - cost_usd, after_named, limit, settings.alert_ratio)
            if level:
                alerts.append(BudgetAlert(name, after_named, limit, level))
    for alert in alerts:
        on_budget_alert.emit(alert)


def reset(settings: LLMSettings, name: str | None = None) -> None:
    """Start a budget's count over: the kernel's (``None``) or a named one (for every kernel)."""
    if name is None:
        with _lock:
            _kernel["spent"] = 0.0
        return
    _store(settings).delete(name)


def status(settings: LLMSettings) -> list[dict[str, Any]]:
    """Every budget that applies: ``{"budget", "spent_usd", "limit_usd", "share"}``."""
    rows: list[dict[str, Any]] = []
    if settings.budget_usd is not None:
        rows.append({"budget": "kernel", "spent_usd": _kernel["spent"], "limit_usd": settings.budget_usd})
    if settings.budgets:
        store = _store(settings)
        for name, limit in settings.budgets.items():
            rows.append({"budget": name, "spent_usd": _named_spent(store, name), "limit_usd": limit})
    for row in rows:
        row["share"] = row["spent_usd"] / row["limit_usd"] if row["limit_usd"] else 1.0
    return rows
