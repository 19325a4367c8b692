"""``SciExt``: the Jupyter server extension (options ``c.SciExt.*``).

Loaded by jupyter_server through ``sci_ext._jupyter_server_extension_points()``,
enabled by ``etc/jupyter/jupyter_server_config.d/sci_ext.json`` that ``pip install``
puts in place.  At load it prepares the metrics directory, hooks the kernel
launch environment, builds one exposition registry and starts background sampling.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Float, Unicode

from .._version import __version__
from . import bridge
from .multiproc import ENV_KERNEL_ID, ENV_MULTIPROC_DIR, CombinedCollector, MetricsDir, install_kernel_env
from .sampler import SingleFlight, Worker

__all__ = ["SciExt"]

log = logging.getLogger("sci_ext.server")


class SciExt(ExtensionApp):
    """Health, metrics and status endpoints of sci_ext."""

    name = "sci_ext"
    description = "sci_ext health, Prometheus metrics and status endpoints"
    version = __version__
    load_other_extensions = True

    health_allow_unauthenticated = Bool(
        False,
        config=True,
        help="Let anyone read /sci/health (for load-balancer and Kubernetes probes). "
        "/sci/metrics and /sci/api/status always need auth.",
    )
    sampling_interval = Float(
        5.0,
        config=True,
        help="Seconds between background samples of resources, health checks and metrics-file compaction.",
    )
    metrics_dir = Unicode(
        "",
        config=True,
        help="Prometheus multiprocess directory shared with kernels (default: core.state_dir/prometheus).",
    )
    kernel_metrics = Bool(
        True,
        config=True,
        help="Put PROMETHEUS_MULTIPROC_DIR and SCI_EXT_KERNEL_ID into the environment of kernels this server "
        "launches, so their metrics appear at /sci/metrics.",
    )
    api_key_scope = Unicode(
        "metrics:read", config=True, help="Scope an API key needs to read /sci/metrics with a Bearer token."
    )

    # ----------------------------------------------------------------- setup
    def initialize_settings(self) -> None:
        """Prepare the metrics directory, the kernel environment hook and the samplers."""
        self.worker = Worker(threads=2)
        self.state_dir, state_error = _state_dir()
        path = Path(self.metrics_dir).expanduser() if self.metrics_dir else bridge.default_metrics_dir(self.state_dir)
        self.metrics = MetricsDir(path)
        if state_error is not None:
            self.metrics.error = state_error
        else:
            self.metrics.prepare()
        if self.kernel_metrics and self.metrics.usable and self.serverapp is not None:
            install_kernel_env(self.serverapp.kernel_manager, self._kernel_env)
        try:
            self._telemetry_installed = bridge.install_server_telemetry()
        except Exception as exc:  # telemetry must not stop the server
            self._telemetry_installed = False
            self.log.warning("sci_ext: telemetry not installed in the server: %s", exc)
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CombinedCollector(bridge.server_registries(), self.metrics))
        interval = max(0.05, float(self.sampling_interval))
        self.health = SingleFlight(self.worker, self._health_report, interval)
        self.status = SingleFlight(self.worker, self._status_report, interval)
        self.exposition = SingleFlight(self.worker, self._exposition, 0.0)
        self._periodic: PeriodicCallback | None = None
        # Hot reload in the server too: `jupyter sci deploy` switches config with no restart.
        _start_config_watcher()
        self.log.info("sci_ext %s: /sci endpoints ready; metrics directory %s", __version__, self.metrics.path)

    def initialize_handlers(self) -> None:
        """Register the three endpoints (jupyter_server prefixes them with base_url)."""
        from .handlers import HealthHandler, MetricsHandler, StatusHandler

        self.handlers.extend(
            [
                (r"/sci/health", HealthHandler),
                (r"/sci/metrics", MetricsHandler),
                (r"/sci/api/status", StatusHandler),
            ]
        )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Start background sampling once the event loop runs."""
        self._periodic = PeriodicCallback(self._tick, max(0.05, float(self.sampling_interval)) * 1000)
        self._periodic.start()
        _time_requests(serverapp)

    async def stop_extension(self) -> None:
        """Stop sampling and the worker threads; write the pending sums of anonymous auth failures."""
        from ..core.security.manager import flush_pending_audit

        if self._periodic is not None:
            self._periodic.stop()
        try:
            await self.worker.run(flush_pending_audit)
        except Exception as exc:  # an unusable audit dir must not stop the server from stopping
            self.log.warning("sci_ext: pending audit records not written: %s", exc)
        self.worker.shutdown()
        if self._telemetry_installed:
            bridge.uninstall_server_telemetry()

    # ----------------------------------------------------------- background
    async def _tick(self) -> None:
        try:
            await self.worker.run(self.metrics.compact)
            await self.status.refresh()
            await self.health.refresh()
        except Exception as exc:
            self.log.warning("sci_ext: background sampling failed: %s", exc)

    def _kernel_env(self, kernel_id: str) -> dict[str, str]:
        if not self.metrics.usable:
            return {}
        return {ENV_MULTIPROC_DIR: str(self.metrics.path), ENV_KERNEL_ID: str(kernel_id)}

    def _server_checks(self) -> list[dict[str, Any]]:
        checks: list[dict[str, Any]] = []
        self.metrics.recheck()  # on the health sampler's schedule: a swapped directory fails health
        if self.metrics.error is not None:
            checks.append(
                {"name": "metrics_dir", "status": "failing", "detail": self.metrics.error, "duration_ms": 0.0}
            )
        else:
            checks.append({"name": "metrics_dir", "status": "ok", "detail": str(self.metrics.path), "duration_ms": 0.0})
        dead = [k["id"] for k in self.kernel_models() if k.get("execution_state") == "dead"]
        checks.append(
            {
                "name": "kernels",
                "status": "degraded" if dead else "ok",
                "detail": f"{len(dead)} dead kernel(s)" if dead else "responsive",
                "duration_ms": 0.0,
            }
        )
        return checks

    def _health_report(self) -> dict[str, Any]:
        return bridge.health(self._server_checks())

    def _status_report(self) -> dict[str, Any]:
        from ..core.telemetry.resources import resources

        with self.metrics.lock:  # compaction rewrites the files collect_status reads
            status = bridge.collect_status()
        if self.metrics.path != bridge.default_metrics_dir(self.state_dir):
            # telemetry reads the default directory; with c.SciExt.metrics_dir, count what /sci/metrics serves
            status.update(bridge.figures_from(self.registry))
        # The process's one CPU sampler (core.telemetry.resources): the same figure the kernels show
        status["resources"] = resources(self.state_dir)
        report = self._health_report()
        status["checks"] = report["checks"]
        status["status"] = bridge.worst([status.get("status", "ok"), report["status"]])
        status["server"] = {
            "version": __version__,
            "pid": os.getpid(),
            "metrics_dir": str(self.metrics.path),
            "metrics_dir_error": self.metrics.error,
        }
        self.health.value, self.health.stamp = report, time.monotonic()  # a fresh health sample for free
        from ..core.security.redact import get_redactor

        return get_redactor().redact_data(status)  # the server's own fields too (issue 18 item 7)

    def _exposition(self) -> tuple[bytes, str]:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def kernel_models(self) -> list[dict[str, Any]]:
        """Kernels of this server: id, name, execution_state, last_activity, connections."""
        manager = getattr(self.serverapp, "kernel_manager", None)
        if manager is None:
            return []
        try:
            return [dict(k) for k in manager.list_kernels()]
        except Exception as exc:
            self.log.debug("sci_ext: listing kernels failed: %s", exc)
            return []


#: Handlers whose "request" lasts as long as a connection or a long poll: not endpoint latency.
_LONG_LIVED = ("WebSocket", "Websocket", "Channels", "EventHandler", "TermSocket")


def _time_requests(serverapp: Any) -> None:
    """Tell the alert monitor how long each endpoint took (``EndpointSlow``), after tornado's own logging."""
    web_app = getattr(serverapp, "web_app", None)
    if web_app is None:
        return
    original = web_app.settings.get("log_function")
    if getattr(original, "_sci_ext_timed", False):
        return
    from ..core.telemetry.alerts import get_monitor

    def log_function(handler: Any) -> None:
        if original is not None:
            original(handler)
        name = type(handler).__name__
        if not any(part in name for part in _LONG_LIVED):
            get_monitor().note_request(f"{handler.request.method} {name}", handler.request.request_time())

    log_function._sci_ext_timed = True  # type: ignore[attr-defined]
    web_app.settings["log_function"] = log_function


def _state_dir() -> tuple[Path, str | None]:
    """``core.state_dir`` from the configuration, and why it cannot be read (if so)."""
    try:
        from ..core.config import get_config

        return Path(get_config().core.state_dir).expanduser(), None
    except Exception as exc:
        fallback = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "sci_ext"
        return fallback, f"configuration cannot be read: {exc}"


def _start_config_watcher() -> None:
    """Poll the config files as kernels do (``core.hot_reload``), so a deployed config applies here."""
    from ..core.config import get_config, get_config_manager

    try:
        if get_config().core.hot_reload:
            get_config_manager().start_watching()
    except Exception as exc:  # a broken config must not stop the server
        log.warning("sci_ext: config hot reload not started: %s", exc)
