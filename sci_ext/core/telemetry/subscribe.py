"""Wire telemetry to the events the features emit (they never import telemetry).

:func:`install` (idempotent) subscribes to:

* the cache's stats listener -> ``sci_cache_requests_total{layer,result}``;
* the resilience hooks: ``on_retry`` -> ``sci_retry_attempts_total{name,error_type}`` (the
  retry layer logs the retry itself), ``on_breaker_change`` -> ``sci_breaker_state{name}`` and a log line,
  ``on_error`` -> ``sci_errors_total{category}``, the shared error records and the alert
  window, ``on_rate_limit_wait`` -> a DEBUG line;
* the security hooks: auth failures -> ``sci_auth_failures_total`` and the alert window,
  lockouts -> a WARNING line;
* health reports -> ``sci_health_check_status{check}`` and the alert window;
* config changes -> the log handlers follow ``core.log_format``, ``core.state_dir``, ...;

configures the JSON log, and (``monitor=True``) starts the background monitor that
samples CPU and memory, refreshes the cache-size gauge, runs the health checks every
``monitoring.check_interval_seconds`` and evaluates the alerts.  With
``monitoring.metrics_enabled = false`` no metric is updated (logs and alerts still work).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import context

__all__ = ["EXPECTS_ERRORS", "expects_errors", "install", "installed", "record_cell", "start", "started", "uninstall"]

_log = logging.getLogger("sci_ext.telemetry")
#: Longest wait between two ticks of the background monitor (``monitoring.check_interval_seconds`` if shorter).
DEFAULT_INTERVAL = 5.0
_lock = threading.Lock()
_undo: list[Callable[[], None]] = []
_installed = False
_last_check_run = 0.0


def installed() -> bool:
    """True after :func:`install` (until :func:`uninstall`)."""
    return _installed


_metrics_enabled: bool | None = None  # cached monitoring.metrics_enabled; refreshed on config changes


#: ``monitoring.metrics_enabled``'s default (a unit test keeps them equal), without building the configuration.
METRICS_DEFAULT = True


def _metrics_on() -> bool:
    global _metrics_enabled
    if _metrics_enabled is None:
        from ..config_sources import only_defaults

        if only_defaults():  # a kernel's first cells: not worth building the configuration for (not kept)
            return METRICS_DEFAULT
        try:
            from ..config import get_config

            _metrics_enabled = bool(get_config().monitoring.metrics_enabled)
        except Exception:
            return True
    return _metrics_enabled


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


EXPECTS_ERRORS = "expects_errors"  # run-context field of a cell tagged raises-exception


def expects_errors() -> bool:
    """True in a run whose errors are expected (a cell tagged ``raises-exception``): not errors for alerting."""
    return any(key == EXPECTS_ERRORS for key, _ in context.current().extra)


def _on_error(record: Any) -> None:
    from .alerts import get_monitor
    from .records import append_error

    expected = expects_errors()
    if not expected:  # the record is kept (the panel lists it); counters and alerts ignore it
        if _metrics_on():
            from .metrics import get_metrics

            m = get_metrics()
            m.errors.labels(m.categories(record.category)).inc()
        get_monitor().note_error(record.category)
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
        monitor.note_check(check.name, check.status, check.detail)
        if m is not None:
            m.health_status.labels(m.check_names(check.name)).set(HEALTH_VALUES[check.status])


def record_cell(
    duration: float,
    error: BaseException | None,
    where: str = "cell",
    *,
    already_recorded: bool = False,
    expected: bool = False,
) -> None:
    """Account one finished cell: duration histogram, error counters, error record.

    ``already_recorded``: the cell's error was recorded in this run already
    (``%%guarded`` gave up, ``handle_errors``): it counts as a failed cell but is not
    recorded a second time.  ``expected``: the cell is tagged ``raises-exception``; its
    error is kept in the records but counted nowhere (not an error for alerting).
    A cell's duration alone never alerts (``CellRunningLong`` compares a running cell
    with its own history: the kernel hooks report starts and ends to the monitor).
    """
    if _pending is not None:
        _start_in_background()  # a deferred install: the first cell starts the monitor, its first tick the rest
    failed = error is not None and not expected
    # Before the metrics exist (a kernel's first cells) the update waits for them: no prometheus_client yet.
    waits = _metrics is None and _metrics_module().later(lambda m: _observe_cell(m, duration, failed))
    if not waits and _metrics_on():
        _observe_cell(_metrics or _get_metrics(), duration, failed)
    if error is not None and not already_recorded:
        from ..resilience.handle import record_error

        # One path for every error: classified, logged, kept, shared (through _on_error).
        record_error(error, where, level=logging.INFO)


def _observe_cell(m: Any, duration: float, failed: bool) -> None:
    """``sci_cell_duration_seconds`` and ``sci_cell_errors_total`` of one cell (unless metrics are off)."""
    if _metrics_on():
        m.cell_duration.observe(duration)
        if failed:
            m.cell_errors.inc()


def _metrics_module() -> Any:
    from . import metrics  # light: prometheus_client is imported when the metrics are created

    return metrics


_monitor: Any = None
_metrics: Any = None


def _get_monitor() -> Any:
    global _monitor
    from .alerts import get_monitor

    _monitor = get_monitor()
    return _monitor


def _get_metrics() -> Any:
    global _metrics
    from .metrics import get_metrics

    _metrics = get_metrics()
    return _metrics


def _llm_budgets(cfg: Any) -> list[dict[str, Any]]:
    """Every LLM budget that applies (``[]`` without one: the LLM package is not even imported)."""
    llm = getattr(cfg, "llm", None)
    if llm is None or (llm.budget_usd is None and not llm.budgets):
        return []
    from ..llm import budgets, settings

    return budgets.status(settings.current())


def _tick() -> None:
    """One round of the background monitor (sampling, cache size, budgets, health checks when due)."""
    global _last_check_run
    if _pending is not None:
        start()  # started by a cell (_start_in_background): config, log handlers, the configured interval
    from ..config import get_config
    from .alerts import get_monitor
    from .resources import cpu_percent, memory_info

    if not _metrics_on():
        _metrics_module().drop_backlog()
    cfg = get_config()
    monitor = get_monitor()
    mem = memory_info()
    monitor.note_memory(mem)
    try:
        rows = _llm_budgets(cfg)
    except Exception as exc:  # a budget store that cannot be read: say why, keep the monitor going
        _log.debug("LLM budgets not read: %s", exc)
        rows = []
    monitor.note_budgets(rows)
    if _metrics_on():
        from .metrics import get_metrics

        m = get_metrics()
        m.cpu_percent.set(cpu_percent())
        m.memory_percent.set(float(mem["percent"]))
        m.cache_size.set(_cache_size(cfg))
        overrun = monitor.cell_overrun()
        m.cell_overrun.set(overrun[0] if overrun else 0.0)
        for row in rows:
            m.llm_budget_ratio.labels(m.budget_names(str(row["budget"]))).set(float(row["share"]))
    now = time.monotonic()
    if now - _last_check_run >= float(cfg.monitoring.check_interval_seconds):
        _last_check_run = now
        from .health import run_health_checks

        run_health_checks()


def _cache_size(cfg: Any) -> int:
    """``sci_cache_size_bytes``: 0 while the cache directory does not exist.

    Asking the cache package would open (and create) a store and import diskcache for it,
    in a kernel that has cached nothing yet.
    """
    if not os.path.isdir(os.path.expanduser(str(cfg.cache.dir))):
        return 0
    from ..cache.stats import cache_size_bytes

    return cache_size_bytes()


def _reconfigure_logging(event: Any) -> None:
    global _metrics_enabled
    from .logs import configure_logging

    _metrics_enabled = None  # read again on next use
    configure_logging()  # no-op unless a log setting changed


def _follow_config() -> Callable[[], None]:
    """Re-apply log settings when the config changes (``%sci_config core.log_format=text``)."""
    from ..config import get_config_manager

    try:
        return get_config_manager().subscribe(_reconfigure_logging)
    except Exception:  # a broken config: nothing to follow yet
        return lambda: None


def _deferred(listener: Callable[..., None]) -> Callable[..., None]:
    """``listener`` that first finishes a deferred :func:`install` (log handlers, monitor)."""

    def call(*args: Any) -> None:
        if _pending is not None:
            start()
        listener(*args)

    return call


_pending: tuple[bool, float | None] | None = None  # (monitor, interval) of a deferred install


class _StartOnFirstRecord(logging.NullHandler):
    """On the ``sci_ext`` logger while an install is deferred: the first record finishes it.

    :func:`start` appends the configured handlers to the logger's list while logging is
    going through it, so the record that started telemetry reaches them too: a warning
    of the first cell is in the JSON log although the log was configured after it.  A
    ``NullHandler`` for everyone else: it shows nothing, so the retry layer's "is anyone
    listening?" check (stderr notice when not) is not fooled by it.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        if _pending is not None and not _config_building():
            start()
        return True


def _config_building() -> bool:
    """A record logged while the configuration is being read: starting now would read it again."""
    from ..config import building

    return building()


_first_record = _StartOnFirstRecord()
_started = False  # start() ran since install(): config followed, log configured


def install(*, monitor: bool = True, interval: float | None = None, defer: bool = False) -> None:
    """Subscribe telemetry to every feature's events and configure the log (idempotent).

    ``monitor`` starts the background thread (every ``interval`` seconds, default
    ``min(5, monitoring.check_interval_seconds)``).  With ``defer`` only the
    subscriptions are made (by channel name: no feature, no config, no
    prometheus_client is imported); the rest (config, log handlers, the monitor
    thread) happens at :func:`start`, which the first event or log record calls.  A
    recorded cell only starts the monitor thread, whose first tick calls :func:`start`
    (:func:`_start_in_background`).  This is what ``%load_ext sci_ext`` does: loading
    stays cheap, and so does the first cell.
    """
    global _installed, _pending
    # Channels by name: subscribing loads neither the cache, the resilience nor the security package.
    from ..events import channel, hook_list

    global _metrics_enabled, _monitor
    _metrics_enabled = _monitor = None
    with _lock:
        if not _installed:
            auth, lockout = hook_list("security auth failure"), hook_list("security lockout")
            on_auth, on_lockout = _deferred(_on_auth_failure), _deferred(_on_lockout)
            auth.append(on_auth)
            lockout.append(on_lockout)
            _undo.extend([
                channel("cache").add(_deferred(_on_cache)),
                channel("retry").add(_deferred(_on_retry)),
                channel("breaker").add(_deferred(_on_breaker)),
                channel("error").add(_deferred(_on_error)),
                channel("rate limit").add(_deferred(_on_rate_wait)),
                channel("health report").add(_deferred(_on_health)),
                lambda: auth.remove(on_auth) if on_auth in auth else None,
                lambda: lockout.remove(on_lockout) if on_lockout in lockout else None,
            ])  # fmt: skip
            _installed = True
        if not defer or not _started:
            _pending = (monitor, interval)
    if not defer:
        start()
    elif not _started:
        logger = logging.getLogger("sci_ext")
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)  # core.log_level's default, until start() applies the configured one
        if _first_record not in logger.handlers:
            logger.addHandler(_first_record)


def start() -> None:
    """Finish :func:`install`: follow the config, configure the log, start the monitor (idempotent)."""
    global _pending, _started
    with _lock:
        pending, _pending = _pending, None
        if pending is None:
            return
        if not _started:
            _undo.append(_follow_config())
            _started = True
    monitor, interval = pending
    from .logs import configure_logging

    try:
        configure_logging()
    except Exception as exc:  # a bad config must not stop the kernel: say so once
        _log.warning("sci_ext log not configured: %s", exc)
    if monitor:
        from .alerts import get_monitor

        mon = get_monitor()
        if _tick not in mon.on_tick:
            mon.on_tick.append(_tick)
        if interval is None:
            from ..config import get_config

            interval = min(DEFAULT_INTERVAL, float(get_config().monitoring.check_interval_seconds))
        mon.start(interval)


def _start_in_background() -> None:
    """Start the monitor thread now and leave the rest of :func:`start` to its first tick.

    What a deferred install still has to do (read the configuration, configure the
    log, create the metrics) delays no cell there: a kernel's first cell only starts
    the thread.  A record logged before that tick starts it at once
    (:class:`_StartOnFirstRecord`), as does a feature's first event.
    """
    with _lock:
        pending = _pending
    if pending is None:
        return
    monitor, interval = pending
    if not monitor:
        start()  # no thread to leave it to
        return
    from .alerts import get_monitor

    mon = get_monitor()
    if _tick not in mon.on_tick:
        mon.on_tick.append(_tick)
    if interval is None:
        config = sys.modules.get("sci_ext.core.config")  # read already: its interval; else the default's
        manager = config.current_config_manager() if config is not None else None
        seconds = manager.config.monitoring.check_interval_seconds if manager is not None else DEFAULT_INTERVAL
        interval = min(DEFAULT_INTERVAL, float(seconds))
    mon.start(interval)


def started() -> bool:
    """True once :func:`install` has been finished (log configured, monitor running if asked)."""
    return _started and _pending is None


def uninstall() -> None:
    """Undo :func:`install`: unsubscribe and stop the monitor.

    The log handlers stay until :func:`.logs.unconfigure_logging`.
    """
    global _installed, _metrics_enabled, _monitor, _pending, _started
    from .alerts import get_monitor

    _metrics_enabled = _monitor = None
    with _lock:
        while _undo:
            _undo.pop()()
        _installed = _started = False
        _pending = None
    logging.getLogger("sci_ext").removeHandler(_first_record)
    mon = get_monitor()
    if _tick in mon.on_tick:
        mon.on_tick.remove(_tick)
    mon.stop()
