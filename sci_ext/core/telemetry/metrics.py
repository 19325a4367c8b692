"""sci_ext's Prometheus metrics (docs/observability.md), created on first use.

Every name, its labels and its type::

    sci_cell_duration_seconds                 histogram  every cell run with the extension loaded
    sci_cell_errors_total                     counter    cells that raised
    sci_function_duration_seconds{function}   histogram  functions under @performance_monitor
    sci_cache_requests_total{layer,result}    counter    cache lookups and stores
    sci_cache_size_bytes                      gauge      bytes of the disk cache
    sci_retry_attempts_total{name,error_type} counter    retries (retry_with_backoff, %%guarded)
    sci_breaker_state{name}                   gauge      0 closed, 1 half-open, 2 open
    sci_errors_total{category}                counter    errors (handle_errors, %%guarded, cells, monitored calls)
    sci_auth_failures_total                   counter    failed API-key validations
    sci_health_check_status{check}            gauge      0 ok, 1 degraded, 2 failing
    sci_alerts_active{alert}                  gauge      1 while an alert is active
    sci_cpu_percent / sci_memory_percent      gauge      what the monitor last sampled (memory: cgroup limit, else host)
    sci_cell_overrun_ratio                    gauge      a running cell's time / its own median, once past the
                                                         CellRunningLong thresholds (else 0)
    sci_llm_budget_spent_ratio{budget}        gauge      spend / limit of each LLM budget that applies

**Processes.** With ``PROMETHEUS_MULTIPROC_DIR`` set before ``prometheus_client`` is
imported (the server extension does it for the kernels it launches, with
:func:`multiprocess_dir`), values live in memory-mapped files there and the server adds
every kernel up with :func:`aggregate_metrics_text`.  Gauges say how processes combine:
states shared between processes (breakers, health, cache size) are ``mostrecent``
(the last write of any process wins), samples of the machine (CPU, memory) and alerts
``livemax`` (dead processes drop out).  Without the variable, metrics stay in this
process's default registry.

**Bounded labels.** Label values that come from user input (breaker, retry and function
names) go through a :class:`LabelLimiter`: at most :data:`MAX_LABEL_VALUES` distinct
values per label and process, each cut to 80 printable characters (200 for function names); later new values
become ``"other"``.  Layers, results, categories and check names come from fixed sets.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_log = logging.getLogger("sci_ext.telemetry")

__all__ = [
    "HEALTH_VALUES",
    "MAX_BACKLOG",
    "MAX_LABEL_VALUES",
    "LabelLimiter",
    "SciMetrics",
    "aggregate_metrics_text",
    "drop_backlog",
    "generate_metrics_text",
    "get_metrics",
    "later",
    "metrics_registry",
    "multiprocess_dir",
]

#: Distinct values one label may take in one process before new ones become "other".
MAX_LABEL_VALUES = 50
#: ``sci_health_check_status`` values.
HEALTH_VALUES = {"ok": 0, "degraded": 1, "failing": 2}

CELL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
FUNCTION_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


def multiprocess_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where kernels launched by the server write metrics: ``core.state_dir/prometheus``."""
    if state_dir is None:
        from ..config import get_config

        state_dir = get_config().core.state_dir
    return Path(state_dir).expanduser() / "prometheus"


class LabelLimiter:
    """Keeps one label's values bounded: the first ``limit`` distinct values, then ``"other"``."""

    def __init__(self, limit: int = MAX_LABEL_VALUES, max_length: int = 80) -> None:
        self.limit = limit
        self.max_length = max_length
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        """The label value to use for ``value``."""
        text = str(value)
        if text in self._seen:
            return text
        clean = "".join(ch if ch.isprintable() else "_" for ch in text)[: self.max_length] or "_"
        with self._lock:
            if clean in self._seen:
                return clean
            if len(self._seen) >= self.limit:
                return "other"
            self._seen.add(clean)
        return clean


def _ensure_multiprocess_dir() -> None:
    # prometheus_client writes into PROMETHEUS_MULTIPROC_DIR from the first metric on; a
    # missing directory would make every metric update raise.
    # Review R4: the directory must be private and ours, or a swapped directory would
    # collect this process's metric files (and serve planted ones).
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from ..trust import ensure_private_dir

        try:
            ensure_private_dir(path, what="PROMETHEUS_MULTIPROC_DIR")
        except OSError as exc:
            _log.warning("sci_ext: metrics kept in this process: %s", exc)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # fall back to in-process metrics


class SciMetrics:
    """The metric objects of this process (one instance: :func:`get_metrics`)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        reg = REGISTRY if registry is None else registry
        self.registry = reg
        self.cell_duration = Histogram(
            "sci_cell_duration_seconds", "Duration of notebook cells run with sci_ext loaded.", buckets=CELL_BUCKETS,
            registry=reg,
        )  # fmt: skip
        self.cell_errors = Counter("sci_cell_errors_total", "Notebook cells that raised an error.", registry=reg)
        self.function_duration = Histogram(
            "sci_function_duration_seconds", "Duration of functions under @performance_monitor.", ["function"],
            buckets=FUNCTION_BUCKETS, registry=reg,
        )  # fmt: skip
        self.cache_requests = Counter(
            "sci_cache_requests_total", "Cache lookups and stores by layer and result.", ["layer", "result"],
            registry=reg,
        )  # fmt: skip
        self.cache_size = Gauge(
            "sci_cache_size_bytes", "Bytes used by the disk cache.", multiprocess_mode="mostrecent", registry=reg
        )
        self.retry_attempts = Counter(
            "sci_retry_attempts_total", "Failed attempts that were retried, by retrier name and error type.",
            ["name", "error_type"], registry=reg,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "sci_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", ["name"],
            multiprocess_mode="mostrecent", registry=reg,
        )  # fmt: skip
        self.errors = Counter("sci_errors_total", "Errors recorded, by category.", ["category"], registry=reg)
        self.auth_failures = Counter("sci_auth_failures_total", "Failed API-key validations.", registry=reg)
        self.health_status = Gauge(
            "sci_health_check_status", "Health check status: 0 ok, 1 degraded, 2 failing.", ["check"],
            multiprocess_mode="mostrecent", registry=reg,
        )  # fmt: skip
        self.alerts_active = Gauge(
            "sci_alerts_active", "1 while the alert is active in some process.", ["alert"],
            multiprocess_mode="livemax", registry=reg,
        )  # fmt: skip
        self.cpu_percent = Gauge(
            "sci_cpu_percent", "CPU use of the machine (0-100) last sampled by the monitor.",
            multiprocess_mode="livemax", registry=reg,
        )  # fmt: skip
        self.memory_percent = Gauge(
            "sci_memory_percent", "Memory use (0-100; of the cgroup limit, else the host) last sampled by the monitor.",
            multiprocess_mode="livemax", registry=reg,
        )  # fmt: skip
        self.cell_overrun = Gauge(
            "sci_cell_overrun_ratio", "A running cell's time over its own median once past the CellRunningLong "
            "thresholds, else 0.", multiprocess_mode="livemax", registry=reg,
        )  # fmt: skip
        self.llm_budget_ratio = Gauge(
            "sci_llm_budget_spent_ratio", "Spend over limit of each LLM budget that applies.", ["budget"],
            multiprocess_mode="mostrecent", registry=reg,
        )  # fmt: skip
        self.breaker_names = LabelLimiter()
        self.retry_names = LabelLimiter()
        self.error_types = LabelLimiter()
        self.function_names = LabelLimiter(max_length=200)
        self.check_names = LabelLimiter()
        self.budget_names = LabelLimiter()
        self.categories = LabelLimiter(limit=20)
        self._function_children: dict[str, Any] = {}

    def function_child(self, name: str) -> Any:
        """The ``sci_function_duration_seconds`` series of ``name`` (cached: decoration time, not call time)."""
        child = self._function_children.get(name)
        if child is None:
            child = self._function_children[name] = self.function_duration.labels(self.function_names(name))
        return child


_metrics: SciMetrics | None = None
_metrics_lock = threading.Lock()
#: Updates made before the metrics existed (:func:`later`), applied in order when they are created.
_backlog: list[Callable[[SciMetrics], None]] = []
#: More updates than this waiting: the metrics are created (a bound, not a tuning knob).
MAX_BACKLOG = 1000


def get_metrics() -> SciMetrics:
    """This process's metrics (created, and ``prometheus_client`` imported, on first call)."""
    global _metrics
    metrics = _metrics
    if metrics is not None:
        return metrics
    with _metrics_lock:
        if _metrics is not None:
            return _metrics
        _ensure_multiprocess_dir()
        metrics = SciMetrics()
        waiting = list(_backlog)
        _backlog.clear()
        _metrics = metrics
    for update in waiting:  # outside the lock: an update may read the configuration, which may log
        try:
            update(metrics)
        except Exception:
            _log.debug("early metric update failed", exc_info=True)
    return metrics


def later(update: Callable[[SciMetrics], None]) -> bool:
    """Keep ``update`` for when the metrics are created, without importing ``prometheus_client`` now.

    A kernel's first cells are recorded this way; the metrics are created at the monitor's
    first tick or by the first reader in this process (:func:`get_metrics` applies the
    updates first).  False, and nothing kept, when the caller must update now: the metrics
    exist, :data:`MAX_BACKLOG` updates are waiting, or another process reads them
    (``PROMETHEUS_MULTIPROC_DIR``: the server's scrape must see every cell at once).
    """
    if _metrics is not None or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return False
    with _metrics_lock:
        if _metrics is not None or len(_backlog) >= MAX_BACKLOG:
            return False
        _backlog.append(update)
        return True


def drop_backlog() -> None:
    """Forget the waiting updates (``monitoring.metrics_enabled = false``: no metric is updated)."""
    with _metrics_lock:
        _backlog.clear()


def metrics_registry() -> Any:
    """The registry sci_ext's metrics live in (prometheus_client's default ``REGISTRY``)."""
    return get_metrics().registry


def generate_metrics_text() -> str:
    """This process's metrics in the Prometheus text format."""
    from prometheus_client import generate_latest

    return generate_latest(metrics_registry()).decode("utf-8")


def aggregate_metrics_text(directory: str | os.PathLike[str] | None = None) -> str:
    """Every process's metrics written under ``directory`` (multiprocess mode), as Prometheus text.

    ``directory`` defaults to ``PROMETHEUS_MULTIPROC_DIR``, else :func:`multiprocess_dir`.
    An absent or empty directory gives an empty text.
    """
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    path = Path(directory) if directory is not None else _default_aggregate_dir()
    if not path.is_dir():
        return ""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    return generate_latest(registry).decode("utf-8")


def _default_aggregate_dir() -> Path:
    env = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(env) if env else multiprocess_dir()


def collected_samples() -> dict[str, list[tuple[dict[str, str], float]]]:
    """``{sample name: [(labels, value)]}`` of sci_ext metrics, from every process this one can see.

    In multiprocess mode (this process or kernels writing :func:`multiprocess_dir`) the
    files there are read; this process's own registry is added when it is not writing there.
    """
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    sources: list[Any] = []
    env = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    shared = Path(env) if env else multiprocess_dir()
    if shared.is_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(shared))
        sources.append(registry)
    if not env:
        sources.append(metrics_registry())
    for source in sources:
        for family in source.collect():
            if not family.name.startswith("sci_"):
                continue
            for sample in family.samples:
                out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out
