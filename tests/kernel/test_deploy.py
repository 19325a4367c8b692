"""`jupyter sci deploy` / `rollback` as a user runs them: subprocesses, real kernels, SIGKILL.

The candidate-server path (a real Jupyter server with the extension) is in
``tests/server/test_deploy_server.py``; here ``--no-candidate`` keeps the steps fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sci_ext.deploy.slots import SLOTS, SlotStore

REPO = Path(__file__).resolve().parents[2]


def sci(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sci_ext", *args], capture_output=True, text=True, env=full, cwd=cwd, timeout=120
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def store(sci_env) -> SlotStore:
    return SlotStore(
        sci_env["XDG_STATE_HOME"] / "sci_ext" / "deploy", sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"
    )


def assert_valid_active(sci_env) -> str:
    """The pointer names a slot whose file is a config sci_ext accepts."""
    from sci_ext.core.config import ConfigManager

    slots = store(sci_env)
    active = slots.active()
    assert active in SLOTS
    assert ConfigManager(user_path=slots.slot_path(active)).validate() == []
    return active


def test_deploy_switch_status_and_rollback(sci_env):
    project = sci_env["project"]
    user = sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"
    user.parent.mkdir(parents=True)
    write(user, "schema_version = 2\n[retry]\nmax_attempts = 4  # hand-made\n")
    res = sci("deploy", str(write(project / "new.toml", "[retry]\nmax_attempts = 7\n")), "--no-candidate")
    assert res.returncode == 0, res.stderr
    assert "[5/5] switched blue -> green" in res.stderr and "deployed" in res.stdout
    assert sci("config", "get", "retry.max_attempts").stdout.strip() == "7"
    assert oct(user.stat().st_mode & 0o777) == "0o600"
    status = sci("deploy", "--status")
    assert status.returncode == 0 and "* green" in status.stdout and "blue" in status.stdout
    # The first deploy adopted the hand-made file as blue: rollback restores it, comment and all.
    res = sci("rollback")
    assert res.returncode == 0 and "rolled back to slot blue" in res.stdout
    assert "hand-made" in user.read_text()
    assert sci("config", "get", "retry.max_attempts").stdout.strip() == "4"
    # Rolling back again goes forward to green: the two slots alternate.
    assert sci("rollback").returncode == 0
    assert sci("config", "get", "retry.max_attempts").stdout.strip() == "7"
    backups = list((store(sci_env).root / "backups").iterdir())
    assert any(p.name.endswith(".pre-switch") for p in backups) and any(p.name.endswith(".deployed") for p in backups)
    assert all(p.stat().st_mode & 0o077 == 0 for p in backups)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[retry]\n\nmax_attempts = 0\n", "new.toml line 3: retry.max_attempts: must be >= 1, got 0"),
        ("[retry\n", "new.toml line 1: invalid TOML"),
        ("[retyr]\nmax_attempts = 3\n", "did you mean"),
        ("schema_version = 99\n[retry]\nmax_attempts = 3\n", "newer than this sci_ext"),
        ("[cache]\nttl_seconds = 'soon'\n", "cache.ttl_seconds"),
    ],
)
def test_bad_deploys_are_refused_and_change_nothing(sci_env, text, message):
    project = sci_env["project"]
    assert (
        sci("deploy", str(write(project / "good.toml", "[retry]\nmax_attempts = 6\n")), "--no-candidate").returncode
        == 0
    )
    slots = store(sci_env)
    before = (slots.active(), {s: slots.read_slot(s) for s in SLOTS}, slots.target.read_text())
    res = sci("deploy", str(write(project / "new.toml", text)), "--no-candidate")
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if not line.startswith("deploy: [")]
    assert len(errors) == 1 and message in errors[0], res.stderr
    assert (slots.active(), {s: slots.read_slot(s) for s in SLOTS}, slots.target.read_text()) == before
    assert sci("config", "get", "retry.max_attempts").stdout.strip() == "6"


def test_usage_errors(sci_env):
    assert sci("deploy").returncode == 2
    res = sci("deploy", str(sci_env["project"] / "missing.toml"), "--no-candidate")
    assert res.returncode == 1 and "missing.toml: no such file" in res.stderr
    res = sci("rollback")
    assert res.returncode == 1 and "nothing to roll back" in res.stderr


def test_older_schema_is_migrated_on_the_way(sci_env):
    project = sci_env["project"]
    res = sci("deploy", str(write(project / "old.toml", "[cache]\nttl = 5\n")), "--no-candidate")
    assert res.returncode == 0 and "renamed cache.ttl -> cache.ttl_seconds" in res.stderr
    assert sci("config", "get", "cache.ttl_seconds").stdout.strip() == "5.0"
    assert (project / "old.toml").read_text() == "[cache]\nttl = 5\n"  # the given file is not changed


def test_a_second_deploy_waits_for_nobody(sci_env):
    from filelock import FileLock

    slots = store(sci_env)
    slots.ensure()
    with FileLock(str(slots.root / "deploy.lock")):
        res = sci("deploy", str(write(sci_env["project"] / "n.toml", "[retry]\nmax_attempts = 2\n")), "--no-candidate")
    assert res.returncode == 1 and "another deploy is running" in res.stderr


@pytest.mark.parametrize("kill_after", [1, 2, 3, 4, 5])
def test_sigkill_at_each_step_leaves_a_valid_active_slot(sci_env, kill_after):
    project = sci_env["project"]
    assert (
        sci("deploy", str(write(project / "a.toml", "[retry]\nmax_attempts = 3\n")), "--no-candidate").returncode == 0
    )
    new = write(project / "b.toml", "[retry]\nmax_attempts = 9\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sci_ext", "deploy", str(new), "--no-candidate"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(f"deploy: [{kill_after}/"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    active = assert_valid_active(sci_env)
    slots = store(sci_env)
    # The live file is the active slot, or becomes it at the next command.
    if slots.target.read_text() != slots.read_slot(active):
        assert sci("deploy", "--status").returncode == 0
        slots.reconcile()
    assert slots.target.read_text() == slots.read_slot(active)
    # A second deploy succeeds and wins.
    res = sci("deploy", str(new), "--no-candidate")
    assert res.returncode == 0, res.stderr
    assert sci("config", "get", "retry.max_attempts").stdout.strip() == "9"


def test_a_running_kernel_sees_the_switch_by_hot_reload(sci_env, kernel_factory):
    project = sci_env["project"]
    env = {"SCI_EXT_CORE__RELOAD_INTERVAL_SECONDS": "0.2"}
    kernel = kernel_factory(env=env)
    kernel.run("from sci_ext.core import get_config").check()
    assert (
        sci("deploy", str(write(project / "n.toml", "[retry]\nmax_attempts = 8\n")), "--no-candidate").returncode == 0
    )
    deadline = time.monotonic() + 20
    seen = None
    while time.monotonic() < deadline:
        seen = kernel.run("print(get_config().retry.max_attempts)").check().stdout.strip()
        if seen == "8":
            break
        time.sleep(0.3)
    assert seen == "8"
    assert sci("rollback").returncode == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = kernel.run("print(get_config().retry.max_attempts)").check().stdout.strip()
        if seen == "3":
            break
        time.sleep(0.3)
    assert seen == "3"


def test_every_step_is_logged_with_the_deployment_id_and_audited(sci_env):
    import json

    project = sci_env["project"]
    res = sci("deploy", str(write(project / "n.toml", "[retry]\nmax_attempts = 2\n")), "--no-candidate")
    assert res.returncode == 0
    deployment = res.stdout.split("(deployment ")[1].rstrip(")\n")
    log = sci_env["XDG_STATE_HOME"] / "sci_ext" / "logs" / "sci_ext.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    steps = [r for r in records if r.get("logger") == "sci_ext.deploy"]
    assert len(steps) == 5 and all(r["correlation_id"] == deployment for r in steps)
    assert sci("rollback").returncode == 0
    audit = sci_env["XDG_STATE_HOME"] / "sci_ext" / "audit" / "audit.jsonl"
    events = [json.loads(line)["event"] for line in audit.read_text().splitlines() if line.strip()]
    assert events.count("deploy.start") == 1 and "deploy.switch" in events and "deploy.rollback" in events
    assert sci("audit", "verify").returncode == 0
