"""``%sci_llm`` and the per-cell LLM notice: thin kernel glue over :mod:`sci_ext.core.llm`.

On load, with ``llm.instrument`` on, the openai / anthropic SDKs the user imports are
accounted.  After each cell that made LLM calls costing more than
``llm.notify_cost_usd`` the cell says so (``[sci_ext] this cell: 14 LLM calls, $0.42``),
and a cell whose cache hits saved LLM calls says that too
(``[sci_ext] cache hit: saved 14 LLM calls, $0.42``).  Budget alerts print to stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from .._table import Table
from .lines import split_line
from .state import KernelState

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["LLMMagics", "register"]


@magics_class
class LLMMagics(Magics):
    """``%sci_llm``."""

    @magic_arguments()
    @argument("--cell", action="store_true", help="only the last cell's calls")
    @argument("--since", metavar="T", help="only calls since T: 30s, 10m, 2h, 1d ago or an ISO time")
    @argument("--model", metavar="M", help="only calls that requested model M or were served by it")
    @argument("--reset", action="store_true", help="forget this kernel's calls and its llm.budget_usd spend")
    @line_magic
    def sci_llm(self, line: str = "") -> Any:
        """LLM calls of this kernel: per model calls, tokens by kind, cost, p50/p95 latency, errors.

        ::

            %sci_llm                 # everything since the kernel started
            %sci_llm --cell          # the last cell
            %sci_llm --since 10m     # the last ten minutes (or an ISO time)
            %sci_llm --model gpt-4o-mini  # requested or served (gpt-4o-mini-2024-07-18)
            %sci_llm --reset         # start over
        """
        from ..core.llm import budgets, report, settings, usage

        args = self.sci_llm.parser.parse_args(split_line(line, "%sci_llm"))
        if args.reset:
            usage.BOOK.reset()
            budgets.reset(settings.current())
            from ..core.llm import attempts

            attempts.reset()
            print("[sci_ext] LLM usage of this kernel reset")
            return None
        try:
            since = report.parse_since(args.since) if args.since else None
        except ValueError as exc:
            raise UsageError(f"%sci_llm: {exc}") from None
        data = usage.get_llm_usage(since=since, cell=args.cell, model=args.model)
        scope = "last cell" if args.cell else (f"since {args.since}" if args.since else "this kernel")
        if not data["models"]:
            print(f"[sci_ext] no LLM calls ({scope}); prices: {data['price_table']}")
        else:
            display(Table(report.HEADER, report.table_rows(data), title=f"LLM usage, {scope} ({data['price_table']})"))
        saved = data["saved"]
        if saved["calls"]:
            print(f"cache hits saved {report.notice(saved['calls'], saved['cost_usd'])}")
        for row in data["budgets"]:
            if "error" in row:
                print(f"budgets: {row['error']}", file=sys.stderr)
                continue
            print(
                f"budget {row['budget']}: {report.money(row['spent_usd'])} of {report.money(row['limit_usd'])}"
                f" ({row['share']:.0%})"
            )
        return None


class _CellWatch:
    """The per-cell notice: which run is the cell, what it spent and saved."""

    def __init__(self) -> None:
        self.token: Any = None
        self.correlation_id: str | None = None

    def pre_run_cell(self, info: Any = None) -> None:
        from ..core import context
        from ..core.llm import patch

        if patch.instrumented() or _wanted():
            patch.instrument()  # patches an SDK imported by the previous cell
        if context.current().correlation_id is None:
            # Telemetry binds the cell's run when it is loaded; until then bind one here.
            self.token = context.bind(execution_count=getattr(info, "execution_count", None))
        self.correlation_id = context.current().correlation_id

    def post_run_cell(self, result: Any = None) -> None:
        from ..core import context
        from ..core.llm import report, settings, usage

        # The run bound now (telemetry may bind its own after this hook's pre_run_cell) carries the calls.
        cid = context.current().correlation_id or self.correlation_id
        if self.token is not None:
            context.reset(self.token)
            self.token = None
        if cid is None:
            return
        calls = [c for c in list(usage.BOOK.calls) if c.correlation_id == cid]
        saved = [s for s in list(usage.BOOK.saved) if s.correlation_id == cid]
        if calls or saved:
            usage.BOOK.last_cell = cid
        threshold = settings.current().notify_cost_usd
        if calls and threshold is not None:
            known = [c.cost_usd for c in calls if c.cost_usd is not None]
            cost = sum(known) if known else None
            unknown = sum(1 for c in calls if c.cost_usd is None and c.status == "ok")
            if (cost or 0) > threshold or (cost is None and threshold == 0):
                blocked = sum(1 for c in calls if c.status == "blocked")
                text = report.notice(len(calls) - blocked, cost, unknown).replace(" call", " LLM call", 1)
                extra = f", {blocked} refused by a budget" if blocked else ""
                print(f"[sci_ext] this cell: {text}{extra}", flush=True)
        if saved:
            total = sum(s.calls for s in saved)
            cost_saved = sum(s.cost_usd for s in saved)
            text = report.notice(total, cost_saved).replace(" call", " LLM call", 1)
            print(f"[sci_ext] cache hit: saved {text}", flush=True)


def _wanted() -> bool:
    from ..core.llm import settings

    return settings.current().instrument


def _alert(alert: Any) -> None:
    from ..core.llm import report

    what = "this kernel's LLM budget" if alert.budget == "kernel" else f"LLM budget {alert.budget!r}"
    if alert.level == "exceeded":
        spent, limit = report.money(alert.spent_usd), report.money(alert.limit_usd)
        text = f"{what} is spent: {spent} of {limit}; further calls are refused"
    else:
        share = alert.spent_usd / alert.limit_usd if alert.limit_usd else 1.0
        text = f"{what} at {share:.0%}: {report.money(alert.spent_usd)} of {report.money(alert.limit_usd)}"
    print(f"[sci_ext] warning: {text}", file=sys.stderr, flush=True)


def register(ipython: InteractiveShell, state: KernelState) -> None:
    """Register ``%sci_llm``, the cell hooks, and instrument the SDKs (``llm.instrument``)."""
    from ..core.config import get_config
    from ..core.llm import events, patch

    ipython.register_magics(LLMMagics)
    watch = _CellWatch()
    state.add_event("pre_run_cell", watch.pre_run_cell)
    state.add_event("post_run_cell", watch.post_run_cell)
    state.on_close(events.on_budget_alert.add(_alert))
    state.on_close(patch.uninstrument)  # also when a later cell turned llm.instrument on
    if get_config().llm.instrument:
        patch.instrument()
