"""Telemetry: JSON logs, Prometheus metrics, health checks and alerts (docs/observability.md).

It *listens*: the features (config, cache, resilience, security) emit events and never
import this package; :func:`install` subscribes to them.  One idea per module:

* :mod:`.logs` - the JSON log with the correlation id (``get_logger``);
* :mod:`.metrics` - the Prometheus metrics and their text (``generate_metrics_text``);
* :mod:`.perf` - ``performance_monitor``;
* :mod:`.health` - ``health_check`` / ``run_health_checks`` and the built-in checks;
* :mod:`.alerts` - the alert rules and the background monitor;
* :mod:`.records` - recent errors shared by every process;
* :mod:`.resources` - CPU, memory, disk, GPUs;
* :mod:`.status` - ``collect_status()``, the JSON of ``/sci/api/status``;
* :mod:`.subscribe` - the subscriptions (``install`` / ``uninstall``).

Names load lazily: ``import sci_ext.core.telemetry`` imports neither prometheus_client,
psutil nor python-json-logger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "get_logger": "logs",
    "configure_logging": "logs",
    "log_path": "logs",
    "performance_monitor": "perf",
    "health_check": "health",
    "run_health_checks": "health",
    "HealthReport": "health",
    "CheckResult": "health",
    "generate_metrics_text": "metrics",
    "aggregate_metrics_text": "metrics",
    "multiprocess_dir": "metrics",
    "get_metrics": "metrics",
    "active_alerts": "alerts",
    "get_monitor": "alerts",
    "collect_status": "status",
    "install": "subscribe",
    "uninstall": "subscribe",
    "record_cell": "subscribe",
    "read_errors": "records",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - built from the export table

if TYPE_CHECKING:  # pragma: no cover
    from .alerts import active_alerts, get_monitor  # noqa: F401
    from .health import CheckResult, HealthReport, health_check, run_health_checks  # noqa: F401
    from .logs import configure_logging, get_logger, log_path  # noqa: F401
    from .metrics import aggregate_metrics_text, generate_metrics_text, get_metrics, multiprocess_dir  # noqa: F401
    from .perf import performance_monitor  # noqa: F401
    from .records import read_errors  # noqa: F401
    from .status import collect_status  # noqa: F401
    from .subscribe import install, record_cell, uninstall  # noqa: F401


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
