"""The trust boundary in one process: modes whatever the umask, owner and symlink checks, discovery.

Another user's ownership is made with ``chown`` when the tests run as root (CI);
otherwise the current uid is hidden from :mod:`sci_ext.core.trust` (monkeypatch).
The cross-user attacks with two real users are in ``test_cross_user_attacks.py``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sci_ext.core import trust
from sci_ext.core.config import ConfigManager
from sci_ext.core.errors import ConfigError
from sci_ext.core.trust import UntrustedPathError, ensure_private_dir, open_private

OTHER_UID = 12345


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def give_away(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``path`` another user's: chown as root, else hide our uid from trust.py."""
    if os.geteuid() == 0:
        os.lchown(path, OTHER_UID, OTHER_UID)
    else:
        monkeypatch.setattr(trust, "_me", lambda: OTHER_UID)


@pytest.fixture
def umask000():
    old = os.umask(0)
    yield
    os.umask(old)


def test_every_created_directory_is_0700_under_umask_000(tmp_path, umask000):
    target = tmp_path / "home" / ".local" / "state" / "sci_ext" / "breakers"
    ensure_private_dir(target)
    for path in (target, *list(target.parents)[:4]):
        assert mode(path) == 0o700, path


def test_default_paths_are_private_under_umask_000(sci_env, tmp_path, umask000, monkeypatch):
    """V5: the sci_ext dirs under the XDG roots (and the roots sci_ext creates) are 0700."""
    home = tmp_path / "victim-home"
    home.mkdir(mode=0o755)
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(home))
    from sci_ext.core.cache.store import DiskStore as CellStore
    from sci_ext.core.config import set_config_manager
    from sci_ext.core.resilience.store import DiskStore
    from sci_ext.core.security.audit import AuditLog

    set_config_manager(None)
    manager = ConfigManager()
    manager.set("rag.top_k", 3)
    manager.save("user")
    cfg = manager.config
    DiskStore(Path(cfg.core.state_dir) / "breakers").update("svc", lambda _: {"state": "closed"})
    CellStore(cfg.cache.dir).close()
    AuditLog(Path(cfg.core.state_dir) / "audit" / "audit.jsonl").append("test.event")
    for sub in (".config", ".config/sci_ext", ".cache", ".cache/sci_ext", ".local", ".local/state"):
        assert mode(home / sub) == 0o700, sub
    for sub in (".local/state/sci_ext", ".local/state/sci_ext/breakers", ".local/state/sci_ext/locks"):
        assert mode(home / sub) == 0o700, sub
    assert mode(home / ".config/sci_ext/config.toml") == 0o600
    for file in (home / ".local/state/sci_ext").rglob("*"):
        if file.is_file():
            assert mode(file) & 0o077 == 0, file


def test_a_directory_others_can_write_is_refused_with_the_fix(tmp_path):
    shared = tmp_path / "state"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UntrustedPathError) as info:
        ensure_private_dir(shared, what="core.state_dir")
    message = str(info.value)
    assert message.count("\n") == 0 and str(shared) in message and "mode 0777" in message
    assert f"Fix: chmod 700 {shared}" in message
    assert mode(shared) == 0o777  # a refusal changes nothing


def test_read_bits_of_an_own_directory_are_removed(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    ensure_private_dir(mine)
    assert mode(mine) == 0o700


def test_another_users_directory_is_refused(tmp_path, monkeypatch):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    give_away(theirs, monkeypatch)
    with pytest.raises(UntrustedPathError, match=r"theirs belongs to another user \(owner .*\); refusing"):
        ensure_private_dir(theirs)


def test_ancestors_must_not_be_writable_by_others_unless_sticky(tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(UntrustedPathError, match=r"directory .*open above it is writable by group or others"):
        ensure_private_dir(open_dir / "sci_ext")
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    assert mode(ensure_private_dir(sticky / "sci_ext")) == 0o700  # /tmp-like: fine


def test_private_files_refuse_symlinks_and_other_owners(tmp_path, monkeypatch):
    directory = ensure_private_dir(tmp_path / "d")
    victim_file = tmp_path / "notes.txt"
    victim_file.write_text("my notes\n")
    (directory / "audit.jsonl").symlink_to(victim_file)
    with pytest.raises(UntrustedPathError, match=r"audit.jsonl is a symlink .*Fix: remove it"):
        open_private(directory / "audit.jsonl", os.O_WRONLY | os.O_APPEND, what="audit log")
    assert victim_file.read_text() == "my notes\n"
    fd = open_private(directory / "new", os.O_RDWR)
    os.close(fd)
    assert mode(directory / "new") == 0o600
    give_away(directory / "new", monkeypatch)
    with pytest.raises(UntrustedPathError, match="belongs to another user"):
        os.close(open_private(directory / "new", os.O_RDWR))


def test_audit_log_never_follows_a_planted_symlink(tmp_path):
    """V14 / 6c: the audit file as a symlink (to the victim's own file) is refused; the target is untouched."""
    from sci_ext.core.security.audit import AuditLog

    audit_dir = ensure_private_dir(tmp_path / "state" / "audit")
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    (audit_dir / "audit.jsonl").symlink_to(notes)
    with pytest.raises(UntrustedPathError, match="is a symlink"):
        AuditLog(audit_dir / "audit.jsonl").append("secret.set", name="X")
    assert notes.read_text() == "keep me\n"


def test_state_store_ignores_an_old_pickle_database(tmp_path):
    """V2: the disk state is JSON; a diskcache database of pickles left in the directory is never read."""
    import diskcache

    from sci_ext.core.resilience.store import DiskStore

    directory = ensure_private_dir(tmp_path / "breakers")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with diskcache.Cache(str(directory)) as old:
        old.set("openai", Evil())
    store = DiskStore(directory)
    assert store.load("openai") is None
    store.update("openai", lambda _: {"state": "open", "opened_at": 1.5, "reset_timeout": 30.0, "new_field": [1]})
    assert DiskStore(directory, generations=False).load("openai")["new_field"] == [1]  # any JSON field round-trips
    assert not marker.exists()
    import sqlite3

    raw = sqlite3.connect(directory / DiskStore.DATABASE_FILE).execute("SELECT value FROM records").fetchone()[0]
    assert raw.startswith("{") and '"state":"open"' in raw
    store.close()


def test_state_helpers_give_private_dirs(tmp_path, umask000):
    state = tmp_path / "st"
    for helper, name in ((trust.logs_dir, "logs"), (trust.metrics_dir, "metrics")):
        path = helper(state)
        assert path == state / name and mode(path) == 0o700 and mode(state) == 0o700


# -- config: user file, project discovery, protected settings --------------------------------------


def test_a_user_file_others_can_write_is_refused(sci_env):
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "sci_ext" / "config.toml"
    user.parent.mkdir(mode=0o700)
    user.write_text("schema_version = 2\n[rag]\ntop_k = 3\n")
    user.chmod(0o666)
    manager = ConfigManager()
    assert manager.config.rag.top_k == 5  # defaults
    assert manager.last_error is not None and f"Fix: chmod 600 {user}" in manager.last_error
    assert "\n" not in manager.last_error


def test_project_file_in_a_directory_others_can_write_is_ignored(sci_env, tmp_path, capsys, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    planted = shared / "sci_ext.toml"
    planted.write_text("schema_version = 2\n[rag]\ntop_k = 9\n")
    work = shared / "me"
    work.mkdir(mode=0o700)
    manager = ConfigManager(cwd=work)
    assert manager.project_path is None and manager.config.rag.top_k == 5
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and str(planted) in lines[0] and "writable by group or others" in lines[0]
    assert "core.trusted_dirs" in lines[0]
    # A project file cannot opt itself in ...
    (work / "sci_ext.toml").write_text(f'schema_version = 2\n[core]\ntrusted_dirs = ["{shared}"]\n')
    assert ConfigManager(cwd=work).config.core.trusted_dirs == []
    (work / "sci_ext.toml").unlink()
    # ... the user (environment or user file) can.
    monkeypatch.setenv("SCI_EXT_CORE__TRUSTED_DIRS", str(shared))
    trusted = ConfigManager(cwd=work)
    assert trusted.project_path == planted and trusted.config.rag.top_k == 9


def test_project_file_of_another_user_is_ignored(sci_env, tmp_path, monkeypatch, capsys):
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    planted = project / "sci_ext.toml"
    planted.write_text("schema_version = 2\n[rag]\ntop_k = 9\n")
    give_away(planted, monkeypatch)
    manager = ConfigManager(cwd=project / "sub")
    assert manager.config.rag.top_k == 5
    (line,) = capsys.readouterr().err.splitlines()
    assert "belongs to another user" in line and str(planted) in line


def test_discovery_stops_at_the_repository_root(sci_env, tmp_path):
    outer = tmp_path / "outer"
    repo = outer / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "nb").mkdir()
    (outer / "sci_ext.toml").write_text("schema_version = 2\n[rag]\ntop_k = 9\n")
    assert ConfigManager(cwd=repo / "nb").project_path is None
    (repo / "sci_ext.toml").write_text("schema_version = 2\n[rag]\ntop_k = 7\n")
    assert ConfigManager(cwd=repo / "nb").config.rag.top_k == 7


def test_discovery_stops_at_home(sci_env, tmp_path, monkeypatch):
    home = tmp_path / "h" / "user"
    (home / "proj").mkdir(parents=True)
    (tmp_path / "h" / "sci_ext.toml").write_text("schema_version = 2\n[rag]\ntop_k = 9\n")
    monkeypatch.setenv("HOME", str(home))
    assert ConfigManager(cwd=home / "proj").project_path is None


PROTECTION_LOWERING = """schema_version = 2
[security]
redact_outputs = false
audit_path = "/tmp/elsewhere/audit.jsonl"
[core]
state_dir = "/tmp/shared-state"
[cache]
redis_url = "redis://:pw@attacker:6379/0"
[breaker]
redis_url = "redis://attacker:6379/0"
[rag]
top_k = 8
"""


def test_a_project_file_cannot_lower_protection(sci_env, capsys):
    (sci_env["project"] / "sci_ext.toml").write_text(PROTECTION_LOWERING)
    manager = ConfigManager()
    assert capsys.readouterr().err.splitlines() == manager.notices  # each shown once, one line each
    cfg = manager.config
    assert cfg.rag.top_k == 8  # ordinary settings still apply
    assert cfg.security.redact_outputs is True and cfg.security.audit_path is None
    assert cfg.core.state_dir != "/tmp/shared-state" and cfg.cache.redis_url is None and cfg.breaker.redis_url is None
    assert len(manager.notices) == 5
    for notice in manager.notices:
        assert "not applied" in notice and "SCI_EXT_" in notice and "\n" not in notice
    redact = next(n for n in manager.notices if "redact_outputs" in n)
    assert "%sci_config security.redact_outputs=" in redact and str(manager.user_path) in redact
    assert all("pw@attacker" not in n for n in manager.notices)
    # The same settings from the user file apply: the user chose them.
    manager.user_path.parent.mkdir(parents=True, exist_ok=True)
    manager.user_path.write_text("schema_version = 2\n[security]\nredact_outputs = false\n")
    assert ConfigManager().config.security.redact_outputs is False


def test_project_file_asking_for_redaction_is_fine(sci_env):
    (sci_env["project"] / "sci_ext.toml").write_text("schema_version = 2\n[security]\nredact_outputs = true\n")
    manager = ConfigManager()
    assert manager.config.security.redact_outputs is True and manager.notices == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_a_config_file_holding_a_secret_setting_is_0600(sci_env, umask):
    """V9 / 6b: whatever the umask, and even when the file existed with mode 0644."""
    old = os.umask(umask)
    try:
        manager = ConfigManager()
        manager.set("cache.redis_signing_key", "TOPSECRET-SIGNING-KEY")
        path = manager.save("user")
        assert mode(path) == 0o600
        path.chmod(0o644)
        manager.set("cache.redis_signing_key", "ANOTHER-SIGNING-KEY")
        manager.save("user")
        assert mode(path) == 0o600
    finally:
        os.umask(old)


def test_config_lock_files_are_private(sci_env, umask000):
    manager = ConfigManager()
    manager.set("rag.top_k", 4)
    manager.save("project")
    locks = Path(os.environ["XDG_STATE_HOME"]) / "sci_ext" / "locks"
    assert mode(locks) == 0o700
    assert all(mode(p) == 0o600 for p in locks.iterdir())


def test_refused_state_dir_is_one_line_in_guarded(sci_env, tmp_path):
    from sci_ext.core.resilience import CircuitBreaker

    shared = tmp_path / "open-state"
    shared.mkdir()
    shared.chmod(0o777)
    from sci_ext.core.config import get_config_manager

    get_config_manager().set("core.state_dir", str(shared))
    with pytest.raises(UntrustedPathError) as info:
        CircuitBreaker("svc-trust-test", store="disk")
    assert "\n" not in str(info.value) and f"Fix: chmod 700 {shared}" in str(info.value)


def test_config_error_type_for_refused_user_file(sci_env):
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "sci_ext"
    user.mkdir(mode=0o700)
    user.chmod(0o777)
    (user / "config.toml").write_text("schema_version = 2\n")
    with pytest.raises(ConfigError, match="config directory .* writable by group or others"):
        ConfigManager().reload()


def test_cached_cell_store_refuses_redis_without_a_signing_key(sci_env):
    """V4: %%cached with cache.redis_url and no key: one CacheError (the cell then runs uncached)."""
    from sci_ext.core.cache.admin import open_store
    from sci_ext.core.config import get_config_manager
    from sci_ext.core.errors import CacheError

    get_config_manager().set("cache.redis_url", "redis://127.0.0.1:1/0")
    with pytest.raises(CacheError) as info:
        open_store("redis")
    assert "\n" not in str(info.value) and "cache.redis_signing_key is not" in str(info.value)
    assert "SCI_EXT_CACHE__REDIS_SIGNING_KEY" in str(info.value)


@pytest.mark.kernel
def test_a_kernel_shows_the_not_applied_line_and_keeps_redacting(kernel_factory, sci_env):
    """V3 in a real kernel: the project file's `redact_outputs = false` is not applied, said once."""
    (sci_env["project"] / "sci_ext.toml").write_text("schema_version = 2\n[security]\nredact_outputs = false\n")
    session = kernel_factory(load_extension=False)
    res = session.run("%load_ext sci_ext").check()
    # The configuration is read by the first cell that needs it (issue 22), not at %load_ext.
    read = session.run("%sci_config security.redact_outputs").check()
    stderr = res.stderr + read.stderr
    lines = [line for line in stderr.splitlines() if "not applied" in line]
    assert len(lines) == 1 and "security.redact_outputs = False not applied" in lines[0], stderr
    shown = read.displays[0]["text/plain"]
    assert "security.redact_outputs  true   boolean  default" in shown
