"""The per-cell LLM notices and the SDK instrumentation, installed at ``%load_ext``.

With ``llm.instrument`` on, the openai / anthropic SDKs the user imports are
accounted (:mod:`sci_ext.core.llm.patch`).  After each cell that made LLM calls
costing more than ``llm.notify_cost_usd`` the cell says so (``[sci_ext] this cell: 14
LLM calls, $0.42``), and a cell whose cache hits saved LLM calls says that too
(``[sci_ext] cache hit: saved 14 LLM calls, $0.42``).  Budget alerts print to stderr.

Light at load and per cell: nothing of :mod:`sci_ext.core.llm` (nor the
configuration) is imported until an SDK is.  An import hook (:class:`SDKImportWatch`,
one string comparison per import) sees the SDK's import and instruments it before
the SDK loads, so calls made in the very cell that imports it are accounted; the
cell hooks then cost a dictionary lookup until the LLM book exists.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ..core import context
from .state import KernelState

__all__ = ["SDKS", "CellWatch", "SDKImportWatch", "register"]

log = logging.getLogger("sci_ext.llm")

#: The SDK packages :mod:`sci_ext.core.llm.patch` instruments (its ``PROVIDERS``; a test keeps them equal).
SDKS = ("openai", "anthropic")
_USAGE = "sci_ext.core.llm.usage"  # exists once anything was instrumented or accounted
_PATCH = "sci_ext.core.llm.patch"


def _sdk_imported() -> bool:
    return any(name in sys.modules for name in SDKS)


def instrument_if_wanted() -> None:
    """Instrument the SDKs when ``llm.instrument`` is on (or they were instrumented already)."""
    from ..core.llm import patch, settings

    if patch.instrumented() or settings.current().instrument:
        patch.instrument()  # patches an SDK imported since; idempotent


class SDKImportWatch:
    """A ``sys.meta_path`` finder that instruments at the first import of an SDK, then leaves."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        """Instrument before an SDK loads; every other import passes with one comparison."""
        if fullname not in SDKS:
            return None
        self.remove()
        try:
            instrument_if_wanted()  # puts the patching hook of core.llm.patch on sys.meta_path
        except Exception:  # accounting must never break the user's import
            log.exception("sci_ext could not instrument %s", fullname)
        # The import system already went past the finders inserted before us: ask them now.
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def install(self) -> None:
        """Watch imports (first in ``sys.meta_path``)."""
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def remove(self) -> None:
        """Stop watching."""
        if self in sys.meta_path:
            sys.meta_path.remove(self)


class CellWatch:
    """The per-cell notice: which run is the cell, what it spent and saved."""

    def __init__(self, state: KernelState | None = None) -> None:
        self.token: Any = None
        self.correlation_id: str | None = None
        self.state = state
        self.runner_cell = False

    def pre_run_cell(self, info: Any = None) -> None:
        """Instrument an SDK imported meanwhile; note the cell's correlation id."""
        if _sdk_imported():
            instrument_if_wanted()  # also when a cell turned llm.instrument on
        if context.current().correlation_id is None:
            # Telemetry binds the cell's run when it is loaded; until then bind one here.
            self.token = context.bind(execution_count=getattr(info, "execution_count", None))
        self.correlation_id = context.current().correlation_id
        # A cell a notebook runner's auto mode wrapped (decided by the input transformer, which
        # ran before this hook): its cache hits are the runner's, not the notebook's.
        auto = sys.modules.get("sci_ext.kernel.cellcache.auto")
        self.runner_cell = auto is not None and auto.runner_cache_dir() is not None

    def post_run_cell(self, result: Any = None) -> None:
        """Print what the cell's LLM calls cost and what its cache hits saved."""
        # The run bound now (telemetry may bind its own after this hook's pre_run_cell) carries the calls.
        cid = context.current().correlation_id or self.correlation_id
        if self.token is not None:
            context.reset(self.token)
            self.token = None
        usage = sys.modules.get(_USAGE)
        if cid is None or usage is None:  # no LLM book: no call and no saving to report
            return
        from ..core.llm import report

        calls = [c for c in list(usage.BOOK.calls) if c.correlation_id == cid]
        saved = [s for s in list(usage.BOOK.saved) if s.correlation_id == cid]
        if calls or saved:
            usage.BOOK.last_cell = cid
        state = self.state
        # In a notebook runner's kernel the outputs must be a plain run's (KernelState.started_by_runner).
        runner = state is not None and state.started_by_runner
        shown = not runner or (state is not None and state.user_loaded)
        if calls and shown:
            blocked = sum(1 for c in calls if c.status == "blocked")
            known = [c.cost_usd for c in calls if c.cost_usd is not None]
            unknown = sum(1 for c in calls if c.cost_usd is None and c.status == "ok")
            self._cost_notice(len(calls) - blocked, sum(known) if known else None, unknown, blocked)
        if saved and not self.runner_cell:
            total = sum(s.calls for s in saved)
            cost_saved = sum(s.cost_usd for s in saved)
            text = report.notice(total, cost_saved).replace(" call", " LLM call", 1)
            print(f"[sci_ext] cache hit: saved {text}", flush=True)
        elif saved and shown:
            # The runner's cache restored the cell: show what the plain run that makes the calls shows.
            self._cost_notice(sum(s.calls for s in saved), sum(s.cost_usd for s in saved), 0, 0)

    @staticmethod
    def _cost_notice(count: int, cost: float | None, unknown: int, blocked: int) -> None:
        """``[sci_ext] this cell: 3 LLM calls, $0.0021`` when the cost passes ``llm.notify_cost_usd``."""
        from ..core.llm import report, settings

        threshold = settings.current().notify_cost_usd
        if threshold is None or not ((cost or 0) > threshold or (cost is None and threshold == 0)):
            return
        text = report.notice(count, cost, unknown).replace(" call", " LLM call", 1)
        extra = f", {blocked} refused by a budget" if blocked else ""
        print(f"[sci_ext] this cell: {text}{extra}", flush=True)


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


def _uninstrument() -> None:
    patch = sys.modules.get(_PATCH)
    if patch is not None:
        patch.uninstrument()  # also when a later cell turned llm.instrument on


def register(ipython: Any, state: KernelState) -> None:
    """Install the cell hooks and the SDK import watch; instrument an SDK imported already."""
    from ..core.events import channel

    watch = CellWatch(state)
    state.add_event("pre_run_cell", watch.pre_run_cell)
    state.add_event("post_run_cell", watch.post_run_cell)
    state.on_close(channel("llm_budget_alert").add(_alert))
    state.on_close(_uninstrument)
    if _sdk_imported():
        instrument_if_wanted()  # the user imported an SDK before loading the extension
    else:
        importer = SDKImportWatch()
        importer.install()
        state.on_close(importer.remove)
