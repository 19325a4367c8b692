"""The one place the server extension calls telemetry (``sci_ext.core.telemetry``).

Telemetry owns metrics, health checks, alerts and the recent-errors reader; the
server adds what only it knows (kernels, the metrics directory) and serves the
result.  Everything here blocks (files, threads): call it from the worker pool.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .._version import __version__

__all__ = [
    "STATUS_ORDER",
    "collect_status",
    "default_metrics_dir",
    "figures_from",
    "health",
    "install_server_telemetry",
    "server_registries",
    "uninstall_server_telemetry",
    "worst",
]

log = logging.getLogger("sci_ext.server")

STATUS_ORDER = {"ok": 0, "degraded": 1, "failing": 2}


def worst(statuses: list[str]) -> str:
    """The worst of ``ok`` / ``degraded`` / ``failing`` (``ok`` for none; unknown counts as failing)."""
    return max(statuses, key=lambda s: STATUS_ORDER.get(s, 2), default="ok")


def install_server_telemetry() -> bool:
    """Subscribe telemetry in the server process (auth failures, alerts, JSON log); True if done here."""
    from ..core.telemetry import get_metrics, install
    from ..core.telemetry.subscribe import installed

    get_metrics()  # create the server's sci_* series now, so the first scrape has them
    if installed():
        return False
    install(monitor=True)
    return True


def uninstall_server_telemetry() -> None:
    """Undo :func:`install_server_telemetry`."""
    from ..core.telemetry import uninstall
    from ..core.telemetry.logs import unconfigure_logging

    uninstall()
    unconfigure_logging()  # the server's log handlers go with the extension


def default_metrics_dir(state_dir: Path) -> Path:
    """Where kernels write metrics: telemetry's ``multiprocess_dir`` (``core.state_dir/prometheus``)."""
    from ..core.telemetry import multiprocess_dir

    return Path(multiprocess_dir(state_dir))


def server_registries() -> list[Any]:
    """Registries of this (server) process: prometheus_client's global one, where jupyter_server's
    and telemetry's metrics live (the server never sets PROMETHEUS_MULTIPROC_DIR for itself)."""
    from prometheus_client import REGISTRY

    return [REGISTRY]


def health(server_checks: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"status", "checks", "version"}``: telemetry's checks plus the server's."""
    try:
        from ..core.telemetry import run_health_checks

        checks = list(run_health_checks().as_dict()["checks"])
    except Exception as exc:
        checks = [
            {"name": "telemetry", "status": "failing", "detail": f"health checks failed: {exc}", "duration_ms": 0.0}
        ]
    checks.extend(server_checks)
    return {"status": worst([c["status"] for c in checks]), "checks": checks, "version": __version__}


def collect_status() -> dict[str, Any]:
    """Telemetry's status document (library part; the checks are added by the caller)."""
    from ..core.telemetry import collect_status as collect

    return dict(collect(run_checks=False))


def figures_from(registry: Any) -> dict[str, Any]:
    """``cells`` and ``retries`` of the status computed from ``registry`` (what /sci/metrics serves)."""
    from ..core.telemetry.status import cells_status

    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in registry.collect():
        if family.name.startswith("sci_"):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    retries = sum(v for _labels, v in samples.get("sci_retry_attempts_total", []))
    return {"cells": cells_status(samples), "retries": {"total": int(retries)}}
