"""The per-cell hot reload of the config files (sci_ext.kernel.config_watch), without a kernel."""

from __future__ import annotations

import os
from pathlib import Path

from sci_ext.core.config import current_config_manager, get_config, get_config_manager, set_config_manager
from sci_ext.kernel.config_watch import ConfigWatch


def _write(path: Path, text: str) -> None:
    # The stamp (mtime, size) must change even on coarse-grained file systems.
    old = path.stat().st_mtime if path.exists() else 0
    path.write_text(text)
    os.utime(path, (old + 5, old + 5))


def test_nothing_to_check_until_the_config_is_read(sci_env, capsys):
    watch = ConfigWatch()
    assert current_config_manager() is None
    watch.pre_run_cell()
    watch.post_run_cell()
    assert current_config_manager() is None  # the check never creates the manager (nor reads files)
    assert capsys.readouterr().err == ""


def test_a_change_is_applied_before_the_next_cell_and_said_once(sci_env, capsys):
    project = sci_env["project"] / "sci_ext.toml"
    _write(project, "[rag]\ntop_k = 3\n[core]\nreload_interval_seconds = 0.1\n")
    watch = ConfigWatch()
    assert get_config().rag.top_k == 3  # a cell reads the config
    watch.post_run_cell()
    _write(project, "[rag]\ntop_k = 4\n[core]\nreload_interval_seconds = 0.1\n")
    watch.pre_run_cell()
    assert get_config().rag.top_k == 4
    assert "sci_ext: config reloaded (rag.top_k)" in capsys.readouterr().err
    _write(project, "[rag]\ntop_k = 'x'\n[core]\nreload_interval_seconds = 0.1\n")
    watch._next_check = 0.0  # the interval has passed
    watch.pre_run_cell()
    err = capsys.readouterr().err
    assert "config change rejected, keeping the previous config" in err and get_config().rag.top_k == 4
    watch.pre_run_cell()
    assert capsys.readouterr().err == ""  # said once
    watch.close()


def test_checks_at_most_once_per_interval(sci_env, monkeypatch):
    project = sci_env["project"] / "sci_ext.toml"
    _write(project, "[core]\nreload_interval_seconds = 3600\n")
    manager = get_config_manager()
    calls = []
    monkeypatch.setattr(manager, "check_files", lambda: calls.append(1) or False)
    watch = ConfigWatch()
    for _ in range(5):
        watch.pre_run_cell()
    assert calls == [1]
    get_config_manager().set("core.hot_reload", False)
    watch._next_check = 0.0
    watch.pre_run_cell()
    assert calls == [1]  # core.hot_reload = false: never


def test_an_invalid_config_is_reported_at_the_end_of_the_cell_that_read_it(sci_env, capsys):
    (sci_env["project"] / "sci_ext.toml").write_text("[rag]\ntop_k = 'broken'\n")
    watch = ConfigWatch()
    watch.pre_run_cell()
    set_config_manager(None)
    get_config()  # the cell reads the config for the first time
    watch.post_run_cell()
    assert "sci_ext: config invalid, using defaults" in capsys.readouterr().err
    watch.post_run_cell()
    watch.pre_run_cell()
    assert "config invalid" not in capsys.readouterr().err
    watch.close()
