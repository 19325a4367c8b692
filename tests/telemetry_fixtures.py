"""Fixtures of the telemetry tests: telemetry installed in this process, metric readers."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def telemetry(sci_env: dict[str, Path]) -> Iterator[dict[str, Path]]:
    """Telemetry subscribed in this process (no background thread), logging to this test's state dir."""
    from sci_ext.core.telemetry import alerts, logs, subscribe

    alerts._monitor = None  # fresh alert windows: other tests' errors do not count here
    subscribe.install(monitor=False)
    logs.configure_logging(force=True)
    yield sci_env
    subscribe.uninstall()
    logs.unconfigure_logging()
    alerts._monitor = None


def sample(metric: str, /, **labels: str) -> float:
    """The current value of one sample of this process's default registry (0 when absent)."""
    from prometheus_client import REGISTRY

    from sci_ext.core.telemetry.metrics import get_metrics

    get_metrics()
    value = REGISTRY.get_sample_value(metric, labels)
    return 0.0 if value is None else value


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool (installed by .ci/run from the Debian package prometheus)."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (apt-get install prometheus); .ci/run installs it")
    return subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=60)
