"""``c.SciExt.metrics_dir``: kernels' files elsewhere than ``core.state_dir/prometheus`` still count everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_fixtures import *  # noqa: F403
from server_fixtures import fetch

WRITER = """
from sci_ext.core.telemetry.metrics import SciMetrics
m = SciMetrics()
for i in range(7):
    m.cell_duration.observe(0.01)
m.cell_errors.inc()
m.retry_attempts.labels("svc", "HTTPError").inc(3)
"""


@pytest.fixture
def custom_dir(tmp_path: Path) -> Path:
    path = tmp_path / "custom-metrics"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def jp_server_config(custom_dir: Path) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"sci_ext": True}},
        "SciExt": {"sampling_interval": 0.2, "metrics_dir": str(custom_dir)},
    }


def _own(name: str) -> float:
    """This (pytest) process's own value of ``name``: the in-process server serves its registry too,
    and earlier in-process tests may have recorded cells there."""
    from prometheus_client import REGISTRY

    return sum(s.value for f in REGISTRY.collect() for s in f.samples if s.name == name)


def test_custom_metrics_dir_feeds_metrics_and_status(custom_dir: Path, jp_asyncio_loop, jp_fetch) -> None:
    code, body, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "health")
    assert code in (200, 503)
    checks = {c["name"]: c for c in json.loads(body)["checks"]}
    assert checks["metrics_dir"] == {**checks["metrics_dir"], "status": "ok", "detail": str(custom_dir)}
    # a process writing like a kernel launched by this server (it exits: the server compacts its files later)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(custom_dir)}
    own_cells, own_errors = _own("sci_cell_duration_seconds_count"), _own("sci_cell_errors_total")
    own_retries = _own("sci_retry_attempts_total")
    subprocess.run([sys.executable, "-c", WRITER], env=env, check=True)
    code, text, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics")
    assert code == 200 and f"sci_cell_duration_seconds_count {7 + own_cells}" in text
    import time

    deadline = time.monotonic() + 15
    while True:
        code, body, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "api", "status")
        status = json.loads(body)
        if status["cells"]["total"] >= 7 + own_cells or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status["cells"]["total"] == 7 + own_cells and status["cells"]["errors"] == 1 + own_errors
    assert status["retries"]["total"] == 3 + own_retries
    assert status["server"]["metrics_dir"] == str(custom_dir)


def test_a_swapped_metrics_dir_is_refused_and_fails_health(custom_dir: Path, jp_asyncio_loop, jp_fetch) -> None:
    """Review 2026-12-b R4: the directory is re-checked (lstat: owner, inode) on the health schedule and per read."""
    import time

    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    assert fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics")[0] == 200  # prepared and pinned
    custom_dir.rename(custom_dir.with_name("moved-away"))
    custom_dir.mkdir(mode=0o700)  # another directory in its place (here of the same user: inode differs)
    planted = MmapedDict(str(custom_dir / "counter_1.db"))  # pid 1: alive, never compacted
    key = mmap_key("sci_injected", "sci_injected_total", ["who"], ["other"], "planted")
    planted.write_value(key, 1337.0, 0.0)
    planted.close()
    deadline = time.monotonic() + 20
    while True:
        code, body, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "health")
        checks = {c["name"]: c for c in json.loads(body)["checks"]}
        if checks["metrics_dir"]["status"] == "failing" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 503 and checks["metrics_dir"]["status"] == "failing", checks
    assert "was replaced by another directory" in checks["metrics_dir"]["detail"]
    code, text, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics")
    assert code == 200 and "sci_injected_total" not in text  # the server's own metrics, not the planted ones
