"""Alerts from the ``monitoring`` thresholds, evaluated off the caller's path.

The rules (the same as ``jupyter_config/prometheus/sci_ext.rules.yml``):

=====================  =====================================================================
``HighErrorRate``      errors / runs (cells and monitored calls) over ``window_seconds``
                       > ``error_rate_threshold``
``HighLatency``        95th percentile of cell and monitored-call durations over the window
                       > ``latency_threshold_seconds``
``HighCPU``            every CPU sample > ``cpu_threshold_percent`` for ``window_seconds``
``HighMemory``         every memory sample > ``memory_threshold_percent`` for ``window_seconds``
``AuthFailures``       more than ``auth_failures_per_minute`` failed validations in 60 s
``HealthCheckFailing`` a check failing for longer than ``check_failing_seconds``
=====================  =====================================================================

Callers only append a timestamp to a bounded deque (:meth:`AlertMonitor.note_run` and
friends); :meth:`AlertMonitor.evaluate` runs in the monitor's daemon thread (or when the
status is read).  An alert is logged once when it starts (WARNING) and once when it ends
(INFO), exported as ``sci_alerts_active{alert}`` and published for other processes in
``core.state_dir/telemetry/alerts/<pid>.json``; :func:`active_alerts` reads the alerts of
every live process.
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

__all__ = ["ALERT_NAMES", "Alert", "AlertMonitor", "active_alerts", "alerts_dir", "get_monitor"]

ALERT_NAMES = ("HighErrorRate", "HighLatency", "HighCPU", "HighMemory", "AuthFailures", "HealthCheckFailing")

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


class AlertMonitor:
    """Windows of recent events, the rules over them, and the background thread that evaluates them."""

    MAX_EVENTS = 20000

    def __init__(self, config: Callable[[], Any] | None = None, clock: Callable[[], float] = time.time) -> None:
        self._config = config or _current_config
        self.clock = clock
        self.runs: deque[tuple[float, float]] = deque(maxlen=self.MAX_EVENTS)  # (time, duration)
        self.errors: deque[float] = deque(maxlen=self.MAX_EVENTS)
        self.auth_failures: deque[float] = deque(maxlen=self.MAX_EVENTS)
        self.cpu_high_since: float | None = None
        self.memory_high_since: float | None = None
        self.last_sample: tuple[float, float] | None = None
        self.failing_since: dict[str, float] = {}
        self.active: dict[str, Alert] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.on_tick: list[Callable[[], None]] = []

    # ---------------------------------------------------------- cheap notes
    def note_run(self, duration: float) -> None:
        """A cell or monitored call finished after ``duration`` seconds."""
        self.runs.append((self.clock(), duration))

    def note_error(self) -> None:
        """An error was recorded."""
        self.errors.append(self.clock())

    def note_auth_failure(self) -> None:
        """An API-key validation failed."""
        self.auth_failures.append(self.clock())

    def note_sample(self, cpu: float, memory: float) -> None:
        """CPU and memory use (percent) sampled now."""
        mon = self._config().monitoring
        now = self.clock()
        self.last_sample = (cpu, memory)
        if cpu > mon.cpu_threshold_percent:
            self.cpu_high_since = self.cpu_high_since or now
        else:
            self.cpu_high_since = None
        if memory > mon.memory_threshold_percent:
            self.memory_high_since = self.memory_high_since or now
        else:
            self.memory_high_since = None

    def note_check(self, name: str, status: str) -> None:
        """A health check reported ``status``."""
        if status == "failing":
            self.failing_since.setdefault(name, self.clock())
        else:
            self.failing_since.pop(name, None)

    # ---------------------------------------------------------- evaluation
    def _conditions(self, now: float) -> dict[str, tuple[float, str, str]]:
        mon = self._config().monitoring
        window = float(mon.window_seconds)
        start = now - window
        durations = [d for t, d in list(self.runs) if t >= start]
        errors = sum(1 for t in list(self.errors) if t >= start)
        found: dict[str, tuple[float, str, str]] = {}
        if errors and (not durations or errors / len(durations) > mon.error_rate_threshold):
            rate = errors / len(durations) if durations else 1.0
            found["HighErrorRate"] = (
                rate,
                "warning",
                f"error rate {100 * rate:.1f} % > {100 * mon.error_rate_threshold:g} % over {window:g} s "
                f"({errors} errors, {len(durations)} runs)",
            )
        if durations:
            p95 = _percentile(durations, 0.95)
            if p95 > mon.latency_threshold_seconds:
                found["HighLatency"] = (
                    p95,
                    "warning",
                    f"p95 latency {p95:.2f} s > {mon.latency_threshold_seconds:g} s over {window:g} s",
                )
        cpu, memory = self.last_sample or (0.0, 0.0)
        if self.cpu_high_since is not None and now - self.cpu_high_since >= window:
            found["HighCPU"] = (cpu, "warning", f"CPU {cpu:.0f} % > {mon.cpu_threshold_percent:g} % for {window:g} s")
        if self.memory_high_since is not None and now - self.memory_high_since >= window:
            found["HighMemory"] = (
                memory,
                "critical",
                f"memory {memory:.0f} % > {mon.memory_threshold_percent:g} % for {window:g} s",
            )
        auth = sum(1 for t in list(self.auth_failures) if t >= now - 60)
        if auth > mon.auth_failures_per_minute:
            found["AuthFailures"] = (
                float(auth),
                "critical",
                f"{auth} auth failures in the last minute > {mon.auth_failures_per_minute}",
            )
        long_failing = sorted(n for n, t in self.failing_since.items() if now - t >= mon.check_failing_seconds)
        if long_failing:
            found["HealthCheckFailing"] = (
                float(len(long_failing)),
                "critical",
                f"failing for over {mon.check_failing_seconds:g} s: {', '.join(long_failing)}",
            )
        return found

    def evaluate(self) -> list[Alert]:
        """Apply the rules now; log, export and publish what started or ended; return the active alerts."""
        now = self.clock()
        found = self._conditions(now)
        started: list[Alert] = []
        ended: list[Alert] = []
        with self._lock:
            for name, (value, severity, summary) in found.items():
                old = self.active.get(name)
                alert = Alert(name, severity, old.since if old else now, summary, round(value, 4))
                self.active[name] = alert
                if old is None:
                    started.append(alert)
            for name in [n for n in self.active if n not in found]:
                ended.append(self.active.pop(name))
            active = sorted(self.active.values(), key=lambda a: a.since)
        for alert in started:
            _log.warning("alert %s started: %s", alert.name, alert.summary, extra={"alert": alert.name})
        for alert in ended:
            _log.info("alert %s ended", alert.name, extra={"alert": alert.name})
        if started or ended:
            self._export(started, ended)
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
        """Evaluate every ``interval`` seconds in a daemon thread (and run the ``on_tick`` callbacks)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
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
