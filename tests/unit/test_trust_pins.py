"""The trust module's helpers added in issue 18: pinned directories, atomic_write, connect_sqlite, checked reads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sci_ext.core import trust


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask000():
    old = os.umask(0)
    yield
    os.umask(old)


def test_a_pinned_directory_refuses_swap_symlink_and_loose_modes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "metrics"
    pin = trust.pin_private_dir(path, what="metrics directory")
    assert pin.recheck() == path and trust.pinned_problems()[1] == []
    # swapped: renamed away and another directory in its place
    path.rename(tmp_path / "away")
    path.mkdir(mode=0o700)
    with pytest.raises(trust.UntrustedPathError, match="was replaced by another directory"):
        pin.recheck()
    count, problems = trust.pinned_problems()
    assert count >= 1 and any(str(path) in p and "was replaced" in p for p in problems)
    # a symlink back to the original directory is no better
    path.rmdir()
    path.symlink_to(tmp_path / "away")
    with pytest.raises(trust.UntrustedPathError, match="no longer a directory"):
        pin.recheck()
    # the original, opened to others
    path.unlink()
    (tmp_path / "away").rename(path)
    assert pin.recheck() == path
    path.chmod(0o777)
    with pytest.raises(trust.UntrustedPathError, match="writable by group or others"):
        pin.recheck()
    path.chmod(0o700)
    # removed: the re-check says so; the health check forgets it (it is re-made privately on next use)
    path.rmdir()
    with pytest.raises(trust.UntrustedPathError, match="was removed"):
        pin.recheck()
    assert all(str(path) not in p for p in trust.pinned_problems()[1])


def test_the_private_dirs_health_check_fails_with_the_reason(tmp_path: Path) -> None:
    from sci_ext.core.telemetry.health import run_health_checks

    path = tmp_path / "llm"
    pin = trust.pin_private_dir(path, what="LLM history directory")
    assert run_health_checks(["private_dirs"]).checks[0].status == "ok"
    path.rename(tmp_path / "away")
    path.mkdir(mode=0o700)
    check = run_health_checks(["private_dirs"]).checks[0]
    assert check.status == "failing" and "LLM history directory" in check.detail and "was replaced" in check.detail
    del pin  # a pin nobody holds any more is not checked


def test_a_pin_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(trust.UntrustedPathError, match="symlink"):
        trust.pin_private_dir(tmp_path / "link")


@settings(max_examples=25, deadline=None)
@given(umask=st.integers(min_value=0, max_value=0o077), wanted=st.sampled_from([0o600, 0o644, 0o400]))
def test_atomic_write_mode_ignores_the_umask(tmp_path_factory, umask: int, wanted: int) -> None:
    base = tmp_path_factory.mktemp("aw")
    old = os.umask(umask)
    try:
        directory = trust.ensure_private_dir(base / "a" / "b")
        trust.atomic_write(directory / "f", "x" * 10, mode=wanted, sync_dir=True)
    finally:
        os.umask(old)
    assert mode(directory / "f") == wanted and (directory / "f").read_text() == "x" * 10
    assert mode(base / "a") == 0o700 and mode(directory) == 0o700
    assert [p.name for p in directory.iterdir()] == ["f"]  # no temp file left


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    target = tmp_path / "w" / "f"
    target.write_text("old")

    def boom(tmp: str, path: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        trust.atomic_write(target, "new", replace=boom)
    assert target.read_text() == "old" and [p.name for p in target.parent.iterdir()] == ["f"]


def test_connect_sqlite_and_temp_dirs_are_private(tmp_path: Path, umask000) -> None:
    conn = trust.connect_sqlite(tmp_path / "x" / "db.sqlite", what="test database")
    conn.execute("CREATE TABLE t (a)")
    conn.close()
    assert mode(tmp_path / "x") == 0o700 and mode(tmp_path / "x" / "db.sqlite") == 0o600
    temp = trust.private_temp_dir("sci_ext-test-")
    try:
        assert mode(temp) == 0o700
    finally:
        temp.rmdir()
    (tmp_path / "y").mkdir(mode=0o700)
    (tmp_path / "y" / "db.sqlite").symlink_to(tmp_path / "x" / "db.sqlite")
    with pytest.raises(trust.UntrustedPathError, match="symlink"):
        trust.connect_sqlite(tmp_path / "y" / "db.sqlite")


def test_read_private_file_refuses_symlinks_and_loose_files(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"ok")
    good.chmod(0o600)
    assert trust.read_private_file(good) == b"ok"
    (tmp_path / "link").symlink_to(good)
    with pytest.raises(trust.UntrustedPathError, match="symlink"):
        trust.read_private_file(tmp_path / "link", what="slot")
    good.chmod(0o666)
    with pytest.raises(trust.UntrustedPathError, match="writable by group or others"):
        trust.read_private_file(good)
    with pytest.raises(FileNotFoundError):
        trust.read_private_file(tmp_path / "missing")


def test_a_kernel_refuses_a_multiprocess_dir_that_is_not_private(tmp_path: Path, monkeypatch) -> None:
    from sci_ext.core.telemetry import metrics

    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(loose))
    metrics._ensure_multiprocess_dir()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # metrics stay in this process
    fresh = tmp_path / "fresh" / "prometheus"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(fresh))
    metrics._ensure_multiprocess_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(fresh) and mode(fresh) == 0o700
