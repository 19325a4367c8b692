"""``%sci_llm``: the LLM calls of this kernel, a thin magic over :mod:`sci_ext.core.llm`.

The per-cell notices and the instrumentation of the SDKs are installed at load by
:mod:`.llm_cells`; this module loads at the first ``%sci_llm``.
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


def register(ipython: InteractiveShell, state: KernelState) -> None:
    """Register ``%sci_llm`` (the cell notices and the SDK instrumentation are :mod:`.llm_cells`)."""
    ipython.register_magics(LLMMagics)
