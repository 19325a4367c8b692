"""Alerts for what hurts a researcher, evaluated off the caller's path (SPEC section 6).

The rules (the same as ``monitoring/prometheus/sci_ext.rules.yml``; thresholds in the
``monitoring`` config section, defaults shown; ``for`` is how long the condition must
hold before the alert fires):

=========================  ==============================================================  =====
``ExternalCallsFailing``   >= ``failed_calls_threshold`` (3) calls gave up (retries         1 min
                           exhausted, or refused by an open breaker) in ``window_seconds``
``LLMBudgetNearlySpent``   an LLM budget's spend >= ``llm.alert_ratio`` (80 %) of it          0
``KernelMemoryNearLimit``  memory (the cgroup's limit, else the host's) >=                  2 min
                           ``memory_threshold_percent`` (90 %)
``DiskNearlyFull``         the ``disk`` check degraded or failing (free <                   5 min
                           ``min_free_disk_bytes``)
``CellRunningLong``        a running cell past ``slow_cell_factor`` (5) x its own median      0
                           and ``slow_cell_min_seconds`` (60) beyond it (>= 3 earlier runs)
``EndpointSlow``           a server endpoint's p95 > ``latency_threshold_seconds`` (1 s)     5 min
                           over ``window_seconds``
``AuthFailures``           > ``auth_failures_per_minute`` (10) failed API-key attempts       0
                           in 60 s
``HealthCheckFailing``     a check failing for > ``check_failing_seconds`` (60)               0
=========================  ==============================================================  =====

Never alerting: a cell's duration alone, CPU (a machine that computes does its job),
``UsageError`` s and errors in cells tagged ``raises-exception`` (the kernel hooks do
not report those as errors).  Callers only append to bounded deques (:meth:`AlertMonitor.note_error`
and friends); :meth:`AlertMonitor.evaluate` runs in the monitor's daemon thread (or when
the status is read).  An alert is logged once when it starts (WARNING) and once when it
ends (INFO), exported as ``sci_alerts_active{alert}`` and published for other processes
in ``core.state_dir/telemetry/alerts/<pid>.json`` (rewritten whenever a summary changes,
so summaries stay current while an alert fires); :func:`active_alerts` reads the alerts
of every live process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["ALERT_NAMES", "EXTERNAL_CATEGORIES", "FOR_SECONDS", "Alert", "AlertMonitor", "active_alerts",
           "alerts_dir", "get_monitor"]  # fmt: skip

ALERT_NAMES = (
    "ExternalCallsFailing",
    "LLMBudgetNearlySpent",
    "KernelMemoryNearLimit",
    "DiskNearlyFull",
    "CellRunningLong",
    "EndpointSlow",
    "AuthFailures",
    "HealthCheckFailing",
)

#: How long each condition must hold before its alert fires (Prometheus ``for:``).
FOR_SECONDS = {
    "ExternalCallsFailing": 60.0,
    "LLMBudgetNearlySpent": 0.0,
    "KernelMemoryNearLimit": 120.0,
    "DiskNearlyFull": 300.0,
    "CellRunningLong": 0.0,
    "EndpointSlow": 300.0,
    "AuthFailures": 0.0,
    "HealthCheckFailing": 0.0,  # the condition itself is "failing for check_failing_seconds"
}

#: Error categories of a call to something outside the notebook that failed after retries
#: (a breaker's refusal, CircuitOpenError, is classified transient).
EXTERNAL_CATEGORIES = frozenset({"transient", "rate_limit", "timeout"})

_log = logging.getLogger("sci_ext.alerts")


@dataclass(frozen=True)
class Alert:
    """An active alert, in the status API's shape."""

    name: str
    severity: str
    since: float
    summary: str
    value: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def alerts_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """``core.state_dir/telemetry/alerts``: one file of active alerts per process."""
    if state_dir is None:
        from ..config import get_config

        state_dir = get_config().core.state_dir
    return Path(state_dir).expanduser() / "telemetry" / "alerts"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class AlertMonitor:
    """Windows of recent events, the rules over them, and the background thread that evaluates them."""

    MAX_EVENTS = 20000
    CELL_HISTORY = 20  # durations kept per cell for its median

    def __init__(self, config: Callable[[], Any] | None = None, clock: Callable[[], float] = time.time) -> None:
        self._config = config or _current_config
        self.clock = clock
        self.external_failures: deque[float] = deque(maxlen=self.MAX_EVENTS)
        self.auth_failures: deque[float] = deque(maxlen=self.MAX_EVENTS)
        self.requests: deque[tuple[float, str, float]] = deque(maxlen=self.MAX_EVENTS)  # (time, endpoint, s)
        self.memory: dict[str, Any] | None = None
        self.budgets: list[dict[str, Any]] = []
        self.cell_history: dict[str, deque[float]] = {}
        self.running_cells: dict[str, tuple[float, str]] = {}  # token -> (start, cell key)
        self.check_status: dict[str, tuple[str, str]] = {}  # name -> (status, detail)
        self.failing_since: dict[str, float] = {}
        self.pending: dict[str, float] = {}  # rule -> since when its condition holds
        self.active: dict[str, Alert] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.on_tick: list[Callable[[], None]] = []
        self.interval = 5.0  # seconds between ticks of the thread

    # ---------------------------------------------------------- cheap notes
    def note_run(self, duration: float) -> None:
        """A monitored call finished (kept for callers; a duration alone never alerts)."""

    def note_error(self, category: str | None = None) -> None:
        """An error was recorded; external-call failures (``EXTERNAL_CATEGORIES``) count for alerting."""
        if category in EXTERNAL_CATEGORIES:
            self.external_failures.append(self.clock())

    def note_auth_failure(self) -> None:
        """An API-key validation failed."""
        self.auth_failures.append(self.clock())

    def note_request(self, endpoint: str, duration: float) -> None:
        """The server answered a request of ``endpoint`` in ``duration`` seconds."""
        self.requests.append((self.clock(), endpoint, duration))

    def note_memory(self, memory: dict[str, Any]) -> None:
        """The latest :func:`~.resources.memory_info`."""
        self.memory = memory

    def note_sample(self, cpu: float, memory: float) -> None:
        """Old callers' sample: only the memory share matters (CPU never alerts)."""
        self.memory = {"percent": memory, "limit_source": "host"}

    def note_budgets(self, rows: list[dict[str, Any]]) -> None:
        """LLM budgets: ``{"budget", "spent_usd", "limit_usd", "share"}`` rows."""
        self.budgets = list(rows)

    def cell_started(self, token: str, key: str) -> None:
        """A cell (``key``: what identifies it across runs, e.g. its source's hash) started."""
        self.running_cells[token] = (self.clock(), key)

    def cell_finished(self, token: str, duration: float | None = None) -> None:
        """The cell started as ``token`` finished; its duration joins its own history."""
        started = self.running_cells.pop(token, None)
        if started is None:
            return
        start, key = started
        history = self.cell_history.get(key)
        if history is None:
            if len(self.cell_history) > 2000:  # bounded: forget the oldest cell
                self.cell_history.pop(next(iter(self.cell_history)))
            history = self.cell_history[key] = deque(maxlen=self.CELL_HISTORY)
        history.append(self.clock() - start if duration is None else duration)

    def note_check(self, name: str, status: str, detail: str = "") -> None:
        """A health check reported ``status``."""
        self.check_status[name] = (status, detail)
        if status == "failing":
            self.failing_since.setdefault(name, self.clock())
        else:
            self.failing_since.pop(name, None)

    # ---------------------------------------------------------- evaluation
    def cell_overrun(self, now: float | None = None) -> tuple[float, float, float] | None:
        """The running cell furthest past its own history: ``(ratio, elapsed, median)``, or ``None``."""
        import statistics  # in the monitor's thread: not on a kernel's first cell (it imports fractions)

        mon = self._config().monitoring
        now = self.clock() if now is None else now
        worst: tuple[float, float, float] | None = None
        for start, key in list(self.running_cells.values()):
            history = list(self.cell_history.get(key, ()))
            if len(history) < int(mon.slow_cell_min_runs):
                continue
            median = max(statistics.median(history), 1e-3)
            elapsed = now - start
            if elapsed >= float(mon.slow_cell_factor) * median and elapsed - median >= float(mon.slow_cell_min_seconds):
                ratio = elapsed / median
                if worst is None or ratio > worst[0]:
                    worst = (ratio, elapsed, median)
        return worst

    def _conditions(self, now: float) -> dict[str, tuple[float, str, str]]:
        cfg = self._config()
        mon = cfg.monitoring
        window = float(mon.window_seconds)
        found: dict[str, tuple[float, str, str]] = {}
        failed = sum(1 for t in list(self.external_failures) if t >= now - window)
        if failed >= int(mon.failed_calls_threshold):
            found["ExternalCallsFailing"] = (
                float(failed),
                "warning",
                f"{failed} external calls failed after retries (or were refused by an open breaker) "
                f"in the last {_duration(window)}",
            )
        near = [b for b in self.budgets if float(b.get("share", 0.0)) >= float(cfg.llm.alert_ratio)]
        if near:
            top = max(near, key=lambda b: float(b["share"]))
            found["LLMBudgetNearlySpent"] = (
                float(top["share"]),
                "warning",
                f"LLM budget {top['budget']}: ${float(top['spent_usd']):.2f} of ${float(top['limit_usd']):.2f} "
                f"spent ({100 * float(top['share']):.0f} %)",
            )
        mem = self.memory
        if mem is not None and float(mem.get("percent", 0.0)) >= float(mon.memory_threshold_percent):
            source = "its cgroup limit" if mem.get("limit_source") == "cgroup" else "the machine's memory"
            found["KernelMemoryNearLimit"] = (
                float(mem["percent"]),
                "critical",
                f"memory {float(mem['percent']):.0f} % of {source} (>= {float(mon.memory_threshold_percent):g} %)",
            )
        disk = self.check_status.get("disk")
        if disk is not None and disk[0] in ("degraded", "failing"):
            found["DiskNearlyFull"] = (1.0, "critical", f"disk nearly full: {disk[1]}")
        overrun = self.cell_overrun(now)
        if overrun is not None:
            ratio, elapsed, median = overrun
            found["CellRunningLong"] = (
                ratio,
                "warning",
                f"a cell has run {_duration(elapsed)}, {ratio:.0f}x its usual {_duration(median)}",
            )
        by_endpoint: dict[str, list[float]] = {}
        for t, endpoint, duration in list(self.requests):
            if t >= now - window:
                by_endpoint.setdefault(endpoint, []).append(duration)
        slow = {e: _percentile(d, 0.95) for e, d in by_endpoint.items()}
        slow = {e: p for e, p in slow.items() if p > float(mon.latency_threshold_seconds)}
        if slow:
            endpoint, p95 = max(slow.items(), key=lambda item: item[1])
            found["EndpointSlow"] = (
                p95,
                "warning",
                f"{endpoint}: p95 {p95:.2f} s > {float(mon.latency_threshold_seconds):g} s over {_duration(window)}",
            )
        auth = sum(1 for t in list(self.auth_failures) if t >= now - 60)
        if auth > mon.auth_failures_per_minute:
            found["AuthFailures"] = (
                float(auth),
                "critical",
                f"{auth} failed API-key attempts in the last minute > {mon.auth_failures_per_minute}",
            )
        long_failing = sorted(n for n, t in self.failing_since.items() if now - t >= mon.check_failing_seconds)
        if long_failing:
            found["HealthCheckFailing"] = (
                float(len(long_failing)),
                "critical",
                f"failing for over {_duration(float(mon.check_failing_seconds))}: {', '.join(long_failing)}",
            )
        return found

    def _firing(self, now: float) -> dict[str, tuple[float, str, str]]:
        """The conditions that have held for their ``for`` duration (:data:`FOR_SECONDS`)."""
        found = self._conditions(now)
        for name in [n for n in self.pending if n not in found]:
            del self.pending[name]
        firing = {}
        for name, condition in found.items():
            since = self.pending.setdefault(name, now)
            if now - since >= FOR_SECONDS.get(name, 0.0):
                firing[name] = condition
        return firing

    def evaluate(self) -> list[Alert]:
        """Apply the rules now; log, export and publish what started or ended; return the active alerts."""
        now = self.clock()
        found = self._firing(now)
        started: list[Alert] = []
        ended: list[Alert] = []
        changed = False
        with self._lock:
            for name, (value, severity, summary) in found.items():
                old = self.active.get(name)
                alert = Alert(name, severity, old.since if old else now, summary, round(value, 4))
                self.active[name] = alert  # the summary follows the condition while it fires
                if old is None:
                    started.append(alert)
                elif old.summary != alert.summary:
                    changed = True
            for name in [n for n in self.active if n not in found]:
                ended.append(self.active.pop(name))
            active = sorted(self.active.values(), key=lambda a: a.since)
        for alert in started:
            _log.warning("alert %s started: %s", alert.name, alert.summary, extra={"alert": alert.name})
        for alert in ended:
            _log.info("alert %s ended", alert.name, extra={"alert": alert.name})
        if started or ended:
            self._export(started, ended)
        if started or ended or changed:
            self._publish(active)
        return active

    def _export(self, started: list[Alert], ended: list[Alert]) -> None:
        try:
            from .metrics import get_metrics

            gauge = get_metrics().alerts_active
            for alert in started:
                gauge.labels(alert.name).set(1)
            for alert in ended:
                gauge.labels(alert.name).set(0)
        except Exception:
            _log.debug("alert metric not exported", exc_info=True)

    def _publish(self, active: list[Alert]) -> None:
        try:
            from ..trust import atomic_write, ensure_private_dir

            directory = ensure_private_dir(alerts_dir(), what="alerts directory")
            path = directory / f"{os.getpid()}.json"
            if not active:
                path.unlink(missing_ok=True)
                return
            atomic_write(path, json.dumps([a.as_dict() for a in active]))
        except Exception as exc:
            _log.debug("alerts not published: %s", exc)

    # ---------------------------------------------------------- thread
    def start(self, interval: float = 5.0) -> None:
        """Evaluate every ``interval`` seconds in a daemon thread (and run the ``on_tick`` callbacks).

        Called again while the thread runs, it only changes the interval (from the next wait on):
        telemetry starts the thread before it has read the configured one.
        """
        self.interval = interval
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                for tick in list(self.on_tick):
                    try:
                        tick()
                    except Exception:
                        _log.debug("monitor tick failed", exc_info=True)
                try:
                    self.evaluate()
                except Exception:
                    _log.debug("alert evaluation failed", exc_info=True)

        self._thread = threading.Thread(target=loop, name="sci_ext-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (within one interval) and withdraw this process's published alerts."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=2)
        self._thread = None
        self._publish([])

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._thread is not None and self._thread.is_alive()


def _current_config() -> Any:
    from ..config import get_config

    return get_config()


_monitor: AlertMonitor | None = None
_monitor_lock = threading.Lock()


def get_monitor() -> AlertMonitor:
    """This process's monitor (created on first use; its thread starts with telemetry's ``install``)."""
    global _monitor
    if _monitor is None:
        with _monitor_lock:
            if _monitor is None:
                _monitor = AlertMonitor()
    return _monitor


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def active_alerts(*, evaluate: bool = True) -> list[dict[str, Any]]:
    """Active alerts of this process (evaluated now) and of every live process sharing ``core.state_dir``.

    The same alert raised by several processes is listed once (the earliest ``since``).
    """
    own = get_monitor().evaluate() if evaluate else list(get_monitor().active.values())
    merged: dict[str, dict[str, Any]] = {a.name: a.as_dict() for a in own}
    try:
        files = list(alerts_dir().glob("*.json"))
    except OSError:
        files = []
    for path in files:
        try:
            pid = int(path.stem)
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        if not _alive(pid):
            path.unlink(missing_ok=True)
            continue
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or "name" not in item:
                continue
            known = merged.get(item["name"])
            if known is None or float(item.get("since", 0)) < float(known.get("since", 0)):
                merged[item["name"]] = item
    return sorted(merged.values(), key=lambda a: float(a.get("since", 0)))
