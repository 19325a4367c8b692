"""The multiprocess metrics directory: start-up cleanup, compaction, torn files, merging, the kernel env hook.

Metrics files are written by real processes (``prometheus_client`` in multiprocess
mode, in subprocesses started with ``PROMETHEUS_MULTIPROC_DIR``), never forged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sci_ext.server.multiproc import CombinedCollector, MetricsDir, install_kernel_env

WORKER = textwrap.dedent(
    """
    import os, sys
    from prometheus_client import Counter, Gauge, Histogram
    c = Counter("demo_cells_total", "cells", ["kind"])
    h = Histogram("demo_seconds", "durations", buckets=(0.1, 1.0))
    g = Gauge("demo_live", "live", multiprocess_mode="livesum")
    a = Gauge("demo_all", "all", multiprocess_mode="all")
    for _ in range(int(sys.argv[1])):
        c.labels("ok").inc()
        h.observe(0.05)
    g.set(1)
    a.set(7)
    print(os.getpid())
    """
)


def _worker(directory: Path, n: int) -> int:
    """Run a process that records ``n`` cells into ``directory``; returns its (now dead) pid."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    out = subprocess.run([sys.executable, "-c", WORKER, str(n)], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def _values(metrics_dir: MetricsDir) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in metrics_dir.collect():
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prepare_creates_0700_and_removes_dead_files(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "prometheus"
    md = MetricsDir(directory)
    assert md.prepare() and md.usable
    assert oct(directory.stat().st_mode & 0o777) == oct(0o700)
    dead = _worker(directory, 3)
    assert list(directory.glob(f"*_{dead}.db"))
    (directory / "counter_archive.db").write_bytes((directory / f"counter_{dead}.db").read_bytes())
    (directory / "notes.txt").write_text("not ours")
    assert MetricsDir(directory).prepare()
    assert not list(directory.glob("*.db"))  # dead pids and old archives gone
    assert (directory / "notes.txt").exists()  # files that are not metrics are left alone


def test_prepare_tightens_mode_and_reports_unusable(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    assert MetricsDir(loose).prepare()
    assert oct(loose.stat().st_mode & 0o777) == oct(0o700)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    md = MetricsDir(blocker / "prometheus")
    assert not md.prepare() and not md.usable
    assert str(blocker / "prometheus") in (md.error or "")
    assert md.collect() == [] and md.compact().dead_pids == []
    link = tmp_path / "link"
    link.symlink_to(loose)
    md = MetricsDir(link)
    assert not md.prepare() and "not a directory" in (md.error or "")


def test_compaction_keeps_counts_and_bounds_files(tmp_path: Path) -> None:
    md = MetricsDir(tmp_path / "m")
    md.prepare()
    pids = [_worker(md.path, n) for n in (2, 3, 5)]
    before = _values(md)
    assert before[("demo_cells_total", (("kind", "ok"),))] == 10
    assert before[("demo_seconds_count", ())] == 10
    result = md.compact()
    assert sorted(result.dead_pids) == sorted(pids)
    names = sorted(p.name for p in md.path.glob("*.db"))
    assert names == ["counter_archive.db", "histogram_archive.db"]
    after = _values(md)
    assert after[("demo_cells_total", (("kind", "ok"),))] == 10
    assert after[("demo_seconds_count", ())] == 10
    assert after[("demo_seconds_bucket", (("le", "0.1"),))] == 10
    assert not any(name == "demo_live" or name == "demo_all" for name, _ in after)  # dead gauges dropped
    # more restarts: still one archive per type, counts keep adding up
    _worker(md.path, 4)
    md.compact()
    assert sorted(p.name for p in md.path.glob("*.db")) == names
    assert _values(md)[("demo_cells_total", (("kind", "ok"),))] == 14


def test_compaction_leaves_live_processes(tmp_path: Path) -> None:
    md = MetricsDir(tmp_path / "m")
    md.prepare()
    dead = _worker(md.path, 1)
    live = _worker(md.path, 1)
    result = md.compact(alive=lambda pid: pid == live)
    assert result.dead_pids == [dead]
    assert list(md.path.glob(f"*_{live}.db")) and not list(md.path.glob(f"*_{dead}.db"))
    assert _values(md)[("demo_cells_total", (("kind", "ok"),))] == 2


def test_collect_skips_torn_and_half_created_files(tmp_path: Path) -> None:
    md = MetricsDir(tmp_path / "m")
    md.prepare()
    _worker(md.path, 2)
    (md.path / "counter_999999.db").write_bytes(b"")  # a kernel that has just opened its file
    (md.path / "counter_999998.db").write_bytes(b"\xff\xff\x00\x00garbage-that-is-not-a-metrics-file")
    values = _values(md)
    assert values[("demo_cells_total", (("kind", "ok"),))] == 2


def test_combined_collector_merges_and_fixes_names(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    md = MetricsDir(tmp_path / "m")
    md.prepare()
    _worker(md.path, 3)
    server = CollectorRegistry()
    Counter("demo_cells_total", "cells", ["kind"], registry=server).labels("ok").inc(2)
    Gauge("odd_running_total", "a gauge named like a counter", registry=server).set(4)
    out = CollectorRegistry(auto_describe=False)
    out.register(CombinedCollector([server], md))
    text = generate_latest(out).decode()
    assert text.count("# TYPE demo_cells_total counter") == 1
    assert 'demo_cells_total{kind="ok"} 5.0' in text  # server 2 + kernel 3
    assert "odd_running 4.0" in text and "odd_running_total" not in text


class _FakeMultiKernelManager:
    """Stands in for jupyter_client's MultiKernelManager.pre_start_kernel signature only."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def pre_start_kernel(self, kernel_name, kwargs):
        kernel_id = kwargs.pop("kernel_id", "generated-id")
        return object(), kernel_name or "python3", kernel_id


def test_install_kernel_env_adds_variables_once() -> None:
    km = _FakeMultiKernelManager()
    calls = []

    def extra(kernel_id: str) -> dict[str, str]:
        calls.append(kernel_id)
        return {"PROMETHEUS_MULTIPROC_DIR": "/x", "SCI_EXT_KERNEL_ID": kernel_id}

    install_kernel_env(km, extra)
    install_kernel_env(km, extra)  # idempotent
    kwargs = {"kernel_id": "k1", "env": {"JPY_SESSION_NAME": "nb.ipynb"}}
    _, _, kid = km.pre_start_kernel(None, kwargs)
    assert kid == "k1" and calls == ["k1"]
    assert kwargs["env"] == {
        "JPY_SESSION_NAME": "nb.ipynb",
        "PROMETHEUS_MULTIPROC_DIR": "/x",
        "SCI_EXT_KERNEL_ID": "k1",
    }
    kwargs = {}
    km.pre_start_kernel(None, kwargs)
    assert kwargs["env"]["SCI_EXT_KERNEL_ID"] == "generated-id"
    assert kwargs["env"]["PATH"] == os.environ["PATH"]  # based on the server's environment


def test_install_kernel_env_never_blocks_a_kernel() -> None:
    km = _FakeMultiKernelManager()

    def broken(kernel_id: str) -> dict[str, str]:
        raise RuntimeError("no metrics today")

    install_kernel_env(km, broken)
    kwargs: dict = {"kernel_id": "k2"}
    _, _, kid = km.pre_start_kernel(None, kwargs)
    assert kid == "k2" and "env" not in kwargs


@pytest.mark.parametrize("n_files", [0, 1])
def test_pids_lists_writers(tmp_path: Path, n_files: int) -> None:
    md = MetricsDir(tmp_path / "m")
    md.prepare()
    pids = {_worker(md.path, 1) for _ in range(n_files)}
    assert md.pids() == pids


def test_archive_bounds_user_chosen_label_values(tmp_path: Path) -> None:
    """Issue 18: dead kernels' breaker/retry names add up in the archive: at most 50 per label, the rest "other"."""
    import subprocess
    import sys

    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    from sci_ext.server.multiproc import ARCHIVE_LABEL_VALUES

    md = MetricsDir(tmp_path / "m")
    md.prepare()
    expected = 0.0
    for batch in range(3):  # three dead kernels, 40 distinct user-chosen names each
        pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        dead = int(pid.stdout)
        store = MmapedDict(str(md.path / f"counter_{dead}.db"))
        for i in range(40):
            labels = [f"breaker-{batch}-{i}", "ConnectionError"]
            key = mmap_key("sci_retry_attempts", "sci_retry_attempts_total", ["name", "error_type"], labels, "h")
            store.write_value(key, float(i + 1), 0.0)
            expected += i + 1
        store.close()
    md.compact(alive=lambda pid: False)
    values = _values(md)
    names = {dict(labels)["name"] for name, labels in values if name == "sci_retry_attempts_total"}
    assert len(names) == ARCHIVE_LABEL_VALUES + 1 and "other" in names
    total = sum(v for (name, _), v in values.items() if name == "sci_retry_attempts_total")
    assert total == expected  # nothing lost: the rest is counted under "other"
    assert "breaker-2-39" in names  # the most used values keep their names
