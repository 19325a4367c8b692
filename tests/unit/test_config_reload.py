"""Hot reload keeps the last good config; saving is atomic and keeps comments."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sci_ext.core import ConfigError
from sci_ext.core.config import ConfigEvent, ConfigManager, user_config_path


def touch_later(path: Path, text: str) -> None:
    # Make sure the stamp (mtime, size) changes even on coarse-grained file systems.
    old = path.stat().st_mtime if path.exists() else 0
    path.write_text(text)
    os.utime(path, (old + 5, old + 5))


def test_reload_applies_changes_and_notifies(sci_env):
    project = sci_env["project"] / "sci_ext.toml"
    project.write_text("[rag]\ntop_k = 3\n")
    manager = ConfigManager()
    events: list[ConfigEvent] = []
    unsubscribe = manager.subscribe(events.append)
    touch_later(project, "[rag]\ntop_k = 4\n")
    assert manager.check_files() is True
    assert manager.config.rag.top_k == 4
    assert events[-1].kind == "changed" and events[-1].changed == ("rag.top_k",) and events[-1].origin == "watch"
    unsubscribe()
    touch_later(project, "[rag]\ntop_k = 5\n")
    manager.check_files()
    assert len(events) == 1
    assert manager.check_files() is False  # nothing changed since


def test_bad_reload_keeps_last_good_config_and_warns(sci_env, caplog):
    project = sci_env["project"] / "sci_ext.toml"
    project.write_text("[rag]\ntop_k = 3\n")
    manager = ConfigManager()
    events: list[ConfigEvent] = []
    manager.subscribe(events.append)
    touch_later(project, "[rag]\ntop_k = 'many'\n")
    with caplog.at_level("WARNING", logger="sci_ext.config"):
        manager.check_files()
    assert manager.config.rag.top_k == 3
    assert events[-1].kind == "rejected" and "expected an integer" in (events[-1].error or "")
    assert "keeping the previous config" in caplog.text
    with pytest.raises(ConfigError, match="sci_ext.toml line 2"):
        manager.reload()
    touch_later(project, "[rag]\ntop_k = 6\n")
    assert manager.reload() is True and manager.last_error is None and manager.config.rag.top_k == 6


def test_watcher_thread_hot_reloads(sci_env):
    project = sci_env["project"] / "sci_ext.toml"
    project.write_text("[rag]\ntop_k = 3\n")
    manager = ConfigManager()
    changed = threading.Event()
    manager.subscribe(lambda e: changed.set() if e.kind == "changed" else None)
    manager.start_watching(interval=0.05)
    try:
        touch_later(project, "[rag]\ntop_k = 8\n")
        assert changed.wait(10), "watcher did not pick up the change"
        assert manager.config.rag.top_k == 8
    finally:
        manager.stop_watching()


def test_subscriber_errors_do_not_stop_others():
    manager = ConfigManager()
    seen = []

    def broken(event: ConfigEvent) -> None:
        raise RuntimeError("boom")

    manager.subscribe(broken)
    manager.subscribe(seen.append)
    manager.set("rag.top_k", 2)
    assert seen and seen[0].changed == ("rag.top_k",)


def test_save_to_user_file_keeps_comments_and_moves_the_source(sci_env):
    user = user_config_path()
    user.parent.mkdir(parents=True)
    user.write_text("# my settings\n[cache]\n# keep entries a day\nttl_seconds = 86400\n")
    manager = ConfigManager()
    manager.set_many({"retry.max_attempts": 5, "cache.notify": "false"})
    path = manager.save("user")
    assert path == user
    text = user.read_text()
    assert "# my settings" in text and "# keep entries a day" in text
    assert "max_attempts = 5" in text and "notify = false" in text and "schema_version = 2" in text
    assert manager.runtime_overrides == {}
    assert manager.source("retry.max_attempts").layer == "user"
    assert ConfigManager().config.retry.max_attempts == 5
    assert not list(user.parent.glob("*.tmp"))


def test_save_project_creates_the_file_in_cwd(sci_env):
    manager = ConfigManager()
    with pytest.raises(ConfigError, match="nothing to save"):
        manager.save("project")
    manager.set("rag.top_k", 12)
    path = manager.save("project")
    assert path == sci_env["project"] / "sci_ext.toml"
    assert ConfigManager().config.rag.top_k == 12


def test_failed_write_leaves_the_old_file(sci_env, monkeypatch):
    user = user_config_path()
    user.parent.mkdir(parents=True)
    user.write_text("[rag]\ntop_k = 3\n")
    manager = ConfigManager()
    manager.set("rag.top_k", 4)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sci_ext.core.config.files.os.replace", fail)
    with pytest.raises(OSError, match="No space"):
        manager.save("user")
    assert user.read_text() == "[rag]\ntop_k = 3\n"
    assert not [p for p in user.parent.iterdir() if p.suffix == ".tmp"]
    assert manager.runtime_overrides == {"rag.top_k": 4}


def test_save_refuses_a_result_that_would_not_validate(sci_env):
    project = sci_env["project"] / "sci_ext.toml"
    project.write_text("[rag]\nchunk_overlap = 600\n")
    manager = ConfigManager()
    manager.set_many({"rag.chunk_size": 500, "rag.chunk_overlap": 100})  # valid: runtime wins
    # In the user file, chunk_size 500 would sit under the project's overlap of 600.
    with pytest.raises(ConfigError, match=r"chunk_overlap \(600\) must be smaller than chunk_size \(500\)"):
        manager.save("user")
    assert not user_config_path().exists()
    assert manager.runtime_overrides == {"rag.chunk_size": 500, "rag.chunk_overlap": 100}


def test_concurrent_saves_never_corrupt(sci_env):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            manager = ConfigManager()
            manager.set("rag.top_k", n)
            manager.save("user")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = ConfigManager()
    assert final.last_error is None and 1 <= final.config.rag.top_k <= 8


def test_reload_interval_is_configurable():
    manager = ConfigManager()
    manager.set("core.reload_interval_seconds", 0.5)
    manager.start_watching()
    try:
        assert manager._watcher is not None and manager._watcher.is_alive()
        manager.start_watching()  # idempotent
    finally:
        manager.stop_watching()
    assert manager._watcher is None


def test_saving_leaves_no_lock_file_in_the_project(sci_env):
    manager = ConfigManager()
    manager.set("rag.top_k", 4)
    path = manager.save("project")
    assert sorted(p.name for p in path.parent.iterdir()) == ["sci_ext.toml"]
    from sci_ext.core.config.files import lock_path_for

    lock = Path(lock_path_for(path))
    assert lock.parent == sci_env["XDG_STATE_HOME"] / "sci_ext" / "locks"
    assert oct(lock.parent.stat().st_mode & 0o777) == "0o700"
    assert lock_path_for(path) == lock_path_for(path.parent / "." / "sci_ext.toml")


def test_runtime_changes_build_on_the_last_good_layers(sci_env):
    project = sci_env["project"] / "sci_ext.toml"
    project.write_text("[rag]\ntop_k = 3\n")
    manager = ConfigManager()
    touch_later(project, "[rag]\ntop_k = 'broken'\n")  # edited, not reloaded yet
    manager.set("retry.max_attempts", 4)  # neither re-reads the file nor fails on it
    assert (manager.config.rag.top_k, manager.config.retry.max_attempts) == (3, 4)
    assert manager.validate()  # validate does read the files as they are now


def test_runtime_changes_work_on_defaults_when_the_files_are_invalid(sci_env):
    (sci_env["project"] / "sci_ext.toml").write_text("[rag]\ntop_k = 'broken'\n")
    manager = ConfigManager()
    assert manager.last_error is not None
    manager.set("rag.top_k", 9)
    assert manager.config.rag.top_k == 9 and manager.source("rag.top_k").layer == "runtime"
