"""``jupyter sci llm``: machine-wide LLM usage and cost (every kernel and script sharing ``core.state_dir``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Add the ``llm`` command."""
    llm = subparsers.add_parser("llm", help="LLM calls, tokens and cost of every kernel on this machine")
    llm.add_argument("--since", metavar="T", help="only calls since T: 30s, 10m, 2h, 1d ago or an ISO time")
    llm.add_argument("--model", metavar="M", help="only calls that requested model M or were served by it")
    llm.add_argument("--json", action="store_true", help="print the totals as JSON")
    llm.add_argument("--reset-budget", metavar="NAME", help="start the named budget's spend over (every kernel)")
    llm.set_defaults(handler=_llm)


def _llm(args: argparse.Namespace) -> int:
    from ..core.config import get_config
    from ..core.llm import budgets, history, prices, report, settings
    from . import UsageFailure

    current = settings.current()
    if args.reset_budget:
        if args.reset_budget not in current.budgets:
            known = ", ".join(sorted(current.budgets)) or "none configured"
            raise UsageFailure(f"--reset-budget {args.reset_budget!r}: no such budget in llm.budgets ({known})")
        budgets.reset(current, args.reset_budget)
        print(f"LLM budget {args.reset_budget!r} reset")
        return 0
    try:
        since = report.parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None
    data = history.machine_usage(get_config().core.state_dir, since, args.model)
    data["price_table"] = prices.table_version()
    named = [row for row in budgets.status(current) if row["budget"] != "kernel"]
    data["budgets"] = named
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    from .._table import Table

    if not data["models"]:
        print(f"no LLM calls recorded in {data['path']}")
    else:
        title = f"LLM usage on this machine ({data.get('processes', 0)} processes; {data['price_table']})"
        print(repr(Table(report.HEADER, report.table_rows(data), title=title)))
    saved = data["saved"]
    if saved["calls"]:
        print(f"cache hits saved {report.notice(saved['calls'], saved['cost_usd'])}")
    for row in named:
        spent, limit = report.money(row["spent_usd"]), report.money(row["limit_usd"])
        print(f"budget {row['budget']}: {spent} of {limit} ({row['share']:.0%})")
    return 0
