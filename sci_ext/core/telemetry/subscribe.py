"""Wire telemetry to the events the features emit (they never import telemetry).

:func:`install` (idempotent) subscribes to:

* the cache's stats listener -> ``sci_cache_requests_total{layer,result}``;
* the resilience hooks: ``on_retry`` -> ``sci_retry_attempts_total{name,error_type}`` and a
  log line, ``on_breaker_change`` -> ``sci_breaker_state{name}`` and a log line,
  ``on_error`` -> ``sci_errors_total{category}``, the shared error records and the alert
  window, ``on_rate_limit_wait`` -> a DEBUG line;
* the security hooks: auth failures -> ``sci_auth_failures_total`` and the alert window,
  lockouts -> a WARNING line;
* health reports -> ``sci_health_check_status{check}`` and the alert window;

configures the JSON log, and (``monitor=True``) starts the background monitor that
samples CPU and memory, refreshes the cache-size gauge, runs the health checks every
``monitoring.check_interval_seconds`` and evaluates the alerts.  With
``monitoring.metrics_enabled = false`` no metric is updated (logs and alerts still work).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import context

__all__ = ["install", "installed", "record_cell", "uninstall"]

_log = logging.getLogger("sci_ext.telemetry")
_lock = threading.Lock()
_undo: list[Callable[[], None]] = []
_installed = False
_last_check_run = 0.0


def installed() -> bool:
    """True after :func:`install` (until :func:`uninstall`)."""
    return _installed


def _metrics_on() -> bool:
    try:
        from ..config import get_config

        return bool(get_config().monitoring.metrics_enabled)
    except Exception:
        return True


def _on_cache(event: Any) -> None:
    if _metrics_on():
        from .metrics import get_metrics

        get_metrics().cache_requests.labels(event.layer, event.result).inc()


def _on_retry(event: Any) -> None:
    # The retry layer logs the retry itself (sci_ext.retry): only the metric here.
    if _metrics_on():
        from .metrics import get_metrics

        m = get_metrics()
        m.retry_attempts.labels(m.retry_names(event.name), m.error_types(event.error_type)).inc()


def _on_breaker(event: Any) -> None:
    from ..resilience.breaker import STATE_VALUES

    if _metrics_on():
        from .metrics import get_metrics

        m = get_metrics()
        m.breaker_state.labels(m.breaker_names(event.name)).set(STATE_VALUES.get(event.new_state, 0))
    level = logging.WARNING if event.new_state == "open" else logging.INFO
    logging.getLogger("sci_ext.breaker").log(
        level,
        "breaker %s: %s -> %s (%d failures)",
        event.name,
        event.old_state,
        event.new_state,
        event.failures,
        extra={"breaker": event.name, "state": event.new_state, "failures": event.failures},
    )


def _on_error(record: Any) -> None:
    from .alerts import get_monitor
    from .records import append_error

    if _metrics_on():
        from .metrics import get_metrics

        m = get_metrics()
        m.errors.labels(m.categories(record.category)).inc()
    get_monitor().note_error()
    ctx = context.current()
    try:
        append_error({
            "time": record.timestamp,
            "where": record.where,
            "category": record.category,
            "error_type": record.error_type,
            "message": record.message,
            "correlation_id": record.correlation_id,
            "kernel_id": ctx.kernel_id,
            "execution_count": ctx.execution_count,
        })  # fmt: skip
    except OSError as exc:
        _log.debug("error record not written: %s", exc)


def _on_rate_wait(event: Any) -> None:
    logging.getLogger("sci_ext.ratelimit").debug(
        "rate limit %s: waiting %.3f s",
        event.name,
        event.wait,
        extra={"bucket": event.name, "wait_seconds": event.wait},
    )


def _on_auth_failure(client: str, reason: str) -> None:
    from .alerts import get_monitor

    if _metrics_on():
        from .metrics import get_metrics

        get_metrics().auth_failures.inc()
    get_monitor().note_auth_failure()


def _on_lockout(client: str, seconds: float) -> None:
    logging.getLogger("sci_ext.security").warning(
        "client %s locked out for %.0f s after repeated auth failures",
        client,
        seconds,
        extra={"client": client, "lockout_seconds": seconds},
    )


def _on_health(report: Any) -> None:
    from .alerts import get_monitor
    from .metrics import HEALTH_VALUES, get_metrics

    monitor = get_monitor()
    m = get_metrics() if _metrics_on() else None
    for check in report.checks:
        monitor.note_check(check.name, check.status)
        if m is not None:
            m.health_status.labels(m.check_names(check.name)).set(HEALTH_VALUES[check.status])


def record_cell(
    duration: float, error: BaseException | None, where: str = "cell", *, already_recorded: bool = False
) -> None:
    """Account one finished cell: duration histogram, error counters, error record, alert window.

    ``already_recorded``: the cell's error was recorded in this run already
    (``%%guarded`` gave up, ``handle_errors``): it counts as a failed cell but is not
    recorded a second time.
    """
    from .alerts import get_monitor

    monitor = get_monitor()
    monitor.note_run(duration)
    if _metrics_on():
        from .metrics import get_metrics

        m = get_metrics()
        m.cell_duration.observe(duration)
        if error is not None:
            m.cell_errors.inc()
    if error is not None and not already_recorded:
        from ..resilience.handle import record_error

        # One path for every error: classified, logged, kept, shared (through _on_error).
        record_error(error, where, level=logging.INFO)


def _tick() -> None:
    """One round of the background monitor (sampling, cache size, health checks when due)."""
    global _last_check_run
    from ..config import get_config
    from .alerts import get_monitor
    from .resources import cpu_percent, memory_info

    cfg = get_config()
    cpu, mem = cpu_percent(), float(memory_info()["percent"])
    get_monitor().note_sample(cpu, mem)
    if _metrics_on():
        from ..cache.stats import cache_size_bytes
        from .metrics import get_metrics

        m = get_metrics()
        m.cpu_percent.set(cpu)
        m.memory_percent.set(mem)
        m.cache_size.set(cache_size_bytes())
    now = time.monotonic()
    if now - _last_check_run >= float(cfg.monitoring.check_interval_seconds):
        _last_check_run = now
        from .health import run_health_checks

        run_health_checks()


def install(*, monitor: bool = True, interval: float | None = None) -> None:
    """Subscribe telemetry to every feature's events and configure the log (idempotent).

    ``monitor`` starts the background thread (every ``interval`` seconds, default
    ``min(5, monitoring.check_interval_seconds)``).
    """
    global _installed
    from ..cache import stats
    from ..resilience import hooks
    from ..security.manager import add_auth_failure_hook, add_lockout_hook
    from .alerts import get_monitor
    from .health import on_health_report
    from .logs import configure_logging

    with _lock:
        if not _installed:
            _undo.extend([
                stats.subscribe(_on_cache),
                hooks.on_retry.add(_on_retry),
                hooks.on_breaker_change.add(_on_breaker),
                hooks.on_error.add(_on_error),
                hooks.on_rate_limit_wait.add(_on_rate_wait),
                add_auth_failure_hook(_on_auth_failure),
                add_lockout_hook(_on_lockout),
                on_health_report.add(_on_health),
            ])  # fmt: skip
            _installed = True
    try:
        configure_logging()
    except Exception as exc:  # a bad config must not stop the kernel: say so once
        _log.warning("sci_ext log not configured: %s", exc)
    if monitor:
        mon = get_monitor()
        if _tick not in mon.on_tick:
            mon.on_tick.append(_tick)
        if interval is None:
            from ..config import get_config

            interval = min(5.0, float(get_config().monitoring.check_interval_seconds))
        mon.start(interval)


def uninstall() -> None:
    """Undo :func:`install`: unsubscribe and stop the monitor.

    The log handlers stay until :func:`.logs.unconfigure_logging`.
    """
    global _installed
    from .alerts import get_monitor

    with _lock:
        while _undo:
            _undo.pop()()
        _installed = False
    mon = get_monitor()
    if _tick in mon.on_tick:
        mon.on_tick.remove(_tick)
    mon.stop()
