"""Issue 18 item 6: the surfaces the second review did not reach, attacked by a second real Unix user.

``sci_attacker`` plants files, symlinks, directories and Redis records; ``sci_victim`` uses
sci_ext as usual (deploy, the config watcher, project discovery, a breaker over a shared
``redis-server``).  Safe means: nothing of the attacker's is obeyed or read as config,
nothing of the victim's is created where others can change it, and each refusal is one
line naming the path and the fix.  Machinery: ``xuser.py`` (as in test_cross_user_attacks.py).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from xuser import ATTACKER, VICTIM, Users, make_users

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def users() -> Iterator[Users]:
    env = make_users()
    yield env
    print("\nissue 18 cross-user attacks tried and refused:")
    for attack, outcome in env.attacks:
        print(f"  {attack}: {outcome}")
    shutil.rmtree(env.root, ignore_errors=True)


def ok(res) -> str:
    assert res.returncode == 0, res.stderr
    return res.stdout


def last_json(res) -> dict:
    return json.loads(ok(res).strip().splitlines()[-1])


def xdg(home: Path) -> dict[str, str]:
    return {
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }


# -- deploy / rollback ----------------------------------------------------------------------------

DEPLOY = """
import json, os, sys
from pathlib import Path
from sci_ext.deploy.pipeline import DeployError, deploy
try:
    deploy(sys.argv[1], target=Path(os.environ['HOME']) / 'live.toml', candidate=False)
    out = {'deployed': True}
except DeployError as exc:
    out = {'error': str(exc)}
print(json.dumps(out))
"""


def test_untrusted_candidate_files_are_refused(users: Users) -> None:
    """A candidate config another user owns, or can still change, is never deployed."""
    shared = users.sticky("d1")
    home = users.home("home-d1", mode=0o755)
    planted = shared / "new.toml"
    ok(
        users.run(
            ATTACKER, f"open('{planted}', 'w').write('schema_version = 2\\n[security]\\nredact_outputs = false\\n')"
        )
    )
    open_dir = users.home("d1-open", user=VICTIM, mode=0o777)  # the victim's own, but others can write
    loose = open_dir / "new.toml"
    ok(users.run(VICTIM, f"open('{loose}', 'w').write('schema_version = 2\\n[rag]\\ntop_k = 3\\n')", home=home))
    for candidate, expected in ((planted, "belongs to another user"), (loose, "writable by group or others")):
        code = "import sys; sys.argv = ['d', " + repr(str(candidate)) + "]\n" + DEPLOY
        out = last_json(users.run(VICTIM, code, home=home, env=xdg(home)))
        assert "deployed" not in out and expected in out["error"] and str(candidate) in out["error"], out
        assert "\n" not in out["error"]
        users.record(f"deploy of a candidate that {expected}", "refused")
    written = [home / "live.toml", *(home / ".local" / "state" / "sci_ext" / "deploy").rglob("*.toml")]
    assert all("redact_outputs" not in p.read_text() and "top_k" not in p.read_text() for p in written if p.is_file())


def test_slot_directories_and_files_are_private_under_umask_000(users: Users) -> None:
    home = users.home("home-d2", mode=0o755)
    code = (
        "import json, os\nfrom pathlib import Path\nfrom sci_ext.deploy.slots import SlotStore\n"
        f"root = Path('{home}/.local/state/sci_ext/deploy')\n"
        f"s = SlotStore(root, Path('{home}/live.toml'))\n"
        "s.adopt_target(); s.write_slot('green', 'schema_version = 2\\n')\n"
        "print(json.dumps({str(p): oct(p.stat().st_mode & 0o777) for p in [root.parent.parent, root.parent, root, "
        "*root.rglob('*')]}))"
    )
    modes = last_json(users.run(VICTIM, code, home=home, env=xdg(home), umask=0o000))
    for path, mode in modes.items():
        wanted = "0o700" if Path(path).is_dir() else "0o600"
        assert mode == wanted, (path, mode)
    # the other user can neither list, swap nor plant a slot
    root = home / ".local" / "state" / "sci_ext" / "deploy"
    res = users.run(ATTACKER, f"import os; os.symlink('/etc/passwd', '{root}/blue.toml.new')")
    assert res.returncode != 0 and "PermissionError" in res.stderr
    users.record("deploy slots under umask 000 (+ planting a slot symlink)", "0700/0600, refused")


def test_a_slot_swapped_for_a_symlink_is_refused(users: Users) -> None:
    """Were a slot ever replaced by a symlink to another user's file, it is not read (no symlink followed)."""
    home = users.home("home-d3", mode=0o755)
    root = home / ".local" / "state" / "sci_ext" / "deploy"
    code = (
        "from pathlib import Path\nfrom sci_ext.deploy.slots import SlotStore\n"
        f"s = SlotStore(Path('{root}'), Path('{home}/live.toml'))\ns.adopt_target()\n"
        "s.write_slot('green', 'schema_version = 2\\n')\n"
    )
    ok(users.run(VICTIM, code, home=home, env=xdg(home)))
    evil = users.sticky("d3") / "evil.toml"
    ok(users.run(ATTACKER, f"open('{evil}', 'w').write('schema_version = 2\\n[security]\\nredact_outputs = false\\n')"))
    (root / "green.toml").unlink()
    os.symlink(evil, root / "green.toml")  # root stands in for a moment the directory was not private
    victim = __import__("pwd").getpwnam(VICTIM)
    os.lchown(root / "green.toml", victim.pw_uid, victim.pw_gid)
    res = users.run(
        VICTIM,
        "import json\nfrom pathlib import Path\nfrom sci_ext.deploy.slots import SlotStore\n"
        f"s = SlotStore(Path('{root}'), Path('{home}/live.toml'))\n"
        "try:\n    print(json.dumps({'text': s.read_slot('green')}))\n"
        "except OSError as exc:\n    print(json.dumps({'error': str(exc)}))\n",
        home=home,
        env=xdg(home),
    )
    out = last_json(res)
    assert "text" not in out and "symlink" in out["error"] and "green.toml" in out["error"]
    users.record("deploy slot swapped for a symlink to another user's file", "refused")


# -- the config watcher and project discovery -----------------------------------------------------

WATCH = """
import json
from sci_ext.core.config import ConfigManager
m = ConfigManager()
first = (m.get('rag.top_k'), m.last_error)
m.check_files()
m.reload(raise_errors=False, origin='watch')
print(json.dumps({'first': first, 'after': (m.get('rag.top_k'), m.last_error)}))
"""


def test_watcher_never_reads_a_file_another_user_can_swap(users: Users) -> None:
    """The user file is a symlink (dotfiles) into a directory the attacker can write: refused on every (re)load."""
    import pwd

    home = users.home("home-w1", mode=0o755)
    team = users.home("w1-team", user=ATTACKER, mode=0o777)  # a "team" directory, not sticky
    target = team / "config.toml"
    ok(users.run(VICTIM, f"open('{target}', 'w').write('schema_version = 2\\n[rag]\\ntop_k = 4\\n')", home=home))
    conf = home / ".config" / "sci_ext"
    conf.mkdir(parents=True)
    (conf / "config.toml").symlink_to(target)
    victim = pwd.getpwnam(VICTIM)
    for path in (home / ".config", conf):
        shutil.chown(path, VICTIM, VICTIM)
        path.chmod(0o700)
    os.lchown(conf / "config.toml", victim.pw_uid, victim.pw_gid)
    before = last_json(users.run(VICTIM, WATCH, home=home, env=xdg(home)))
    swap = (
        f"import os\nos.rename('{target}', '{target}.old')\n"
        f"open('{target}', 'w').write('schema_version = 2\\n[rag]\\ntop_k = 99\\n')\n"
    )
    ok(users.run(ATTACKER, swap))  # the swap the watcher would otherwise pick up on its next look
    after = last_json(users.run(VICTIM, WATCH, home=home, env=xdg(home)))
    for value, error in (before["first"], before["after"], after["first"], after["after"]):
        assert value not in (4, 99) and error and "belongs to another user" in error and "config.toml" in error
    users.record("config watcher following a symlink into a directory another user can write", "refused")


def test_project_file_below_another_users_directory_is_ignored(users: Users) -> None:
    """Discovery checks the ancestors: a directory above the project that another user owns could be renamed."""
    outer = users.home("p1-outer", user=ATTACKER, mode=0o755)
    project = outer / "proj"
    project.mkdir()
    shutil.chown(project, VICTIM, VICTIM)
    project.chmod(0o700)
    home = users.home("home-p1", mode=0o755)
    ok(users.run(VICTIM, f"open('{project}/sci_ext.toml', 'w').write('schema_version = 2\\n[rag]\\ntop_k = 7\\n')"))
    code = "import json\nfrom sci_ext.core.config import ConfigManager\nm = ConfigManager()\n"
    code += "print(json.dumps({'top_k': m.get('rag.top_k'), 'project': str(m.project_path)}))"
    res = users.run(VICTIM, code, home=home, cwd=project, env=xdg(home))
    out = last_json(res)
    assert out["top_k"] != 7 and out["project"] == "None"
    warning = [line for line in res.stderr.splitlines() if "ignoring" in line]
    assert len(warning) == 1 and str(outer) in warning[0] and "belongs to another user" in warning[0]
    users.record("project file below a directory another user owns (rename race)", "ignored, warned")


# -- two users on one redis-server ----------------------------------------------------------------

BREAKER = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from sci_ext.core.errors import CircuitOpenError
from sci_ext.core.resilience import CircuitBreaker
b = CircuitBreaker('shared-llm', fail_max=2, reset_timeout=600, store='redis')
mode = sys.argv[1]
def down():
    raise ConnectionError('service down')
if mode == 'trip':
    for _ in range(3):
        try:
            b.call(down)
        except (ConnectionError, CircuitOpenError):
            pass
    print(json.dumps({'state': b.state}))
else:
    try:
        print(json.dumps({'result': b.call(lambda: 42), 'state': b.state}))
    except CircuitOpenError as exc:
        print(json.dumps({'open': str(exc)}))
"""


def test_breaker_records_of_another_users_key_are_never_obeyed(users: Users, redis_server) -> None:
    def run(user: str, key: str, mode: str, name: str):
        home = users.home(f"home-r1-{name}", user=user)
        env = {
            **xdg(home),
            "SCI_EXT_BREAKER__REDIS_URL": redis_server.url,
            "SCI_EXT_CACHE__REDIS_SIGNING_KEY": key,
        }
        return users.run(user, "import sys; sys.argv = ['b', " + repr(mode) + "]\n" + BREAKER, home=home, env=env)

    victim_key, attacker_key = "victim-signing-key-0123456789", "attacker-signing-key-987654"
    assert last_json(run(ATTACKER, attacker_key, "trip", "a1"))["state"] == "open"
    res = run(VICTIM, victim_key, "call", "v1")
    out = last_json(res)
    assert out == {"result": 42, "state": "closed"}, out
    assert "not signed with cache.redis_signing_key" in res.stderr
    # the same records ARE obeyed by a process holding the key that sealed them (the test can fail)
    assert "open" in last_json(run(ATTACKER, attacker_key, "call", "a2"))
    users.record("breaker records in a shared Redis sealed with another user's key", "ignored")
