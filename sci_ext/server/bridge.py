"""The one place the server extension calls telemetry (``sci_ext.core.telemetry``).

Telemetry owns metrics, health checks, alerts and the recent-errors reader; the
server adds what only it knows (kernels, the metrics directory) and serves the
result.  When telemetry is not installed in this build, a minimal stand-in keeps
the endpoints working: the ``sci_auth_failures_total`` counter, a state-dir
check and an empty status.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .._version import __version__

__all__ = [
    "STATUS_ORDER",
    "collect_status",
    "default_metrics_dir",
    "health",
    "install_server_telemetry",
    "server_registries",
    "telemetry_available",
    "uninstall_server_telemetry",
    "worst",
]

log = logging.getLogger("sci_ext.server")

STATUS_ORDER = {"ok": 0, "degraded": 1, "failing": 2}


def telemetry_available() -> bool:
    """True when ``sci_ext.core.telemetry`` is part of this build."""
    try:
        return importlib.util.find_spec("sci_ext.core.telemetry") is not None
    except (ImportError, ValueError):
        return False


def worst(statuses: list[str]) -> str:
    """The worst of ``ok`` / ``degraded`` / ``failing`` (``ok`` for none)."""
    return max(statuses, key=lambda s: STATUS_ORDER.get(s, 2), default="ok")


# ------------------------------------------------------------------ metrics
_fallback_registry: Any = None


def _fallback_metrics() -> Any:
    """A private registry with ``sci_auth_failures_total`` fed by the security hooks."""
    global _fallback_registry
    if _fallback_registry is None:
        from prometheus_client import CollectorRegistry, Counter

        from ..core.security.manager import add_auth_failure_hook

        registry = CollectorRegistry(auto_describe=True)
        failures = Counter("sci_auth_failures_total", "Failed authentications (API keys, endpoints).", registry=registry)
        add_auth_failure_hook(lambda _client, _reason: failures.inc())
        _fallback_registry = registry
    return _fallback_registry


def install_server_telemetry() -> bool:
    """Subscribe telemetry in the server process (auth failures, alerts, JSON log); True if done here."""
    if not telemetry_available():
        _fallback_metrics()
        return False
    from ..core.telemetry import get_metrics, install

    from ..core.telemetry.subscribe import installed

    get_metrics()  # create the server's sci_* series now, so the first scrape has them
    if installed():
        return False
    install(monitor=True)
    return True


def uninstall_server_telemetry() -> None:
    """Undo :func:`install_server_telemetry`."""
    if telemetry_available():
        from ..core.telemetry import uninstall

        uninstall()


def default_metrics_dir(state_dir: Path) -> Path:
    """Where kernels write metrics: telemetry's ``multiprocess_dir`` (``core.state_dir/prometheus``)."""
    if telemetry_available():
        from ..core.telemetry import multiprocess_dir

        return Path(multiprocess_dir(state_dir))
    return state_dir / "prometheus"


def server_registries() -> list[Any]:
    """Registries of this (server) process: prometheus_client's global one (jupyter_server's and
    telemetry's metrics live there), plus the stand-in's when telemetry is absent."""
    from prometheus_client import REGISTRY

    registries = [REGISTRY]
    if not telemetry_available():
        registries.append(_fallback_metrics())
    return registries


# ------------------------------------------------------------------- health
def _check(name: str, status: str, detail: str, started: float) -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "detail": detail,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        "since": time.time(),
    }


def _fallback_checks(state_dir: Path) -> list[dict[str, Any]]:
    started = time.perf_counter()
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, probe = tempfile.mkstemp(prefix=".health-", dir=state_dir)
        os.close(fd)
        os.unlink(probe)
        return [_check("state_dir", "ok", "writable", started)]
    except OSError as exc:
        return [_check("state_dir", "failing", f"{state_dir} is not writable: {exc.strerror or exc}", started)]


def health(state_dir: Path, server_checks: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"status", "checks", "version"}``: telemetry's checks plus the server's (blocking)."""
    checks: list[dict[str, Any]] = []
    if telemetry_available():
        try:
            from ..core.telemetry import run_health_checks

            checks = list(run_health_checks().as_dict()["checks"])
        except Exception as exc:
            checks = [
                {"name": "telemetry", "status": "failing", "detail": f"health checks failed: {exc}", "duration_ms": 0.0}
            ]
    else:
        checks = _fallback_checks(state_dir)
    checks.extend(server_checks)
    checks = [_plain(c) for c in checks]
    return {"status": worst([c["status"] for c in checks]), "checks": checks, "version": __version__}


def _plain(check: Any) -> dict[str, Any]:
    if isinstance(check, dict):
        return check
    if hasattr(check, "as_dict"):
        return dict(check.as_dict())
    return dict(vars(check))


# ------------------------------------------------------------------- status
def collect_status() -> dict[str, Any]:
    """Telemetry's status document (library part), or an empty one of the same shape."""
    if telemetry_available():
        from ..core.telemetry import collect_status as collect

        return dict(collect(run_checks=False))
    return {
        "schema": 1,
        "version": __version__,
        "time": time.time(),
        "status": "ok",
        "checks": [],
        "resources": {},
        "kernels": [],
        "cells": {"total": 0, "errors": 0, "p50_seconds": None, "p95_seconds": None},
        "cache": {"hits": 0, "misses": 0, "hit_ratio": None, "bytes": 0, "entries": 0},
        "breakers": [],
        "retries": {"total": 0},
        "errors": [],
        "alerts": [],
        "llm": None,
    }
