"""The review's cross-user attacks, run by two real Unix users with ``runuser``: each must fail safely.

``sci_attacker`` plants files, directories, symlinks and Redis entries; ``sci_victim``
then uses sci_ext as usual.  Safe means: the victim's code never runs the
attacker's pickle (no ``PWNED`` file), no protection is lowered, nothing of the
victim's is changed, and every refusal is one line naming the path or setting, what
is wrong and the fix.  See ``xuser.py`` for how the users get a Python and sci_ext.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from xuser import ATTACKER, VICTIM, Users, make_users

pytestmark = pytest.mark.slow

EVIL = """
class Evil:
    def __reduce__(self):
        import os
        return (os.system, ("id > {marker}",))
"""


@pytest.fixture(scope="module")
def users() -> Iterator[Users]:
    env = make_users()
    yield env
    print("\ncross-user attacks tried and refused:")
    for attack, outcome in env.attacks:
        print(f"  {attack}: {outcome}")
    import shutil

    shutil.rmtree(env.root, ignore_errors=True)


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def ok(res) -> str:
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_planted_project_file_in_a_sticky_directory_is_ignored(users: Users) -> None:
    """V3 / 5c: an attacker's sci_ext.toml above the victim's working directory."""
    shared = users.sticky("t1")
    evil_state = shared / "evil-state"
    ok(
        users.run(
            ATTACKER,
            f"open('{shared}/sci_ext.toml', 'w').write('schema_version = 2\\n[security]\\nredact_outputs = false\\n"
            f'[core]\\nstate_dir = "{evil_state}"\\n[rag]\\ntop_k = 99\\n\')',
        )
    )
    home = users.home("home-t1")
    work = shared / "victim-work"
    ok(users.run(VICTIM, f"import os; os.mkdir('{work}', 0o700)", home=home))
    res = users.run(
        VICTIM,
        "import json; from sci_ext.core.config import ConfigManager; m = ConfigManager(); c = m.config;"
        "print(json.dumps([c.security.redact_outputs, c.rag.top_k, c.core.state_dir, str(m.project_path)]))",
        home=home,
        cwd=work,
    )
    redact, top_k, state_dir, project = json.loads(ok(res).strip().splitlines()[-1])
    assert redact is True and top_k == 5 and state_dir != str(evil_state) and project == "None"
    warning = one_line(res.stderr)
    assert f"ignoring {shared}/sci_ext.toml" in warning and "belongs to another user" in warning
    assert "core.trusted_dirs" in warning and not evil_state.exists()
    users.record("planted sci_ext.toml in a 1777 dir (redact off, state_dir)", "ignored, one warning")


def test_planted_state_directory_with_a_pickle_is_refused(users: Users) -> None:
    """V2 / 5b: core.state_dir pre-created by the attacker, with a diskcache pickle in breakers/."""
    shared = users.sticky("t2")
    marker = shared / "PWNED"
    state = shared / "st"
    ok(
        users.run(
            ATTACKER,
            EVIL.format(marker=marker)
            + f"import os, diskcache\nos.makedirs('{state}/breakers'); os.chmod('{state}', 0o777);"
            f"os.chmod('{state}/breakers', 0o777)\ndiskcache.Cache('{state}/breakers').set('openai', Evil())\n",
        )
    )
    home = users.home("home-t2")
    res = users.run(
        VICTIM,
        "from sci_ext.core.resilience import CircuitBreaker\n"
        "try:\n    print(CircuitBreaker('openai').call(lambda: 42))\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n",
        home=home,
        env={"SCI_EXT_CORE__STATE_DIR": str(state)},
    )
    line = one_line(ok(res))
    assert line.startswith("UntrustedPathError") and str(state) in line and "belongs to another user" in line
    assert "Fix:" in line and not marker.exists()
    users.record("planted state dir + diskcache pickle (breakers)", "refused: " + line[:70])


def test_victims_own_state_dir_in_a_sticky_directory_cannot_be_swapped(users: Users) -> None:
    """5b/5d: the victim's private state dir in /tmp: the attacker can neither rename nor enter it."""
    shared = users.sticky("t3")
    state = shared / "vst"
    home = users.home("home-t3")
    code = "from sci_ext.core.resilience import CircuitBreaker\nprint(CircuitBreaker('openai').call(lambda: 42))\n"
    env = {"SCI_EXT_CORE__STATE_DIR": str(state)}
    assert ok(users.run(VICTIM, code, home=home, env=env)).strip() == "42"
    attempts = {
        "rename": f"os.rename('{state}', '{state}.moved')",
        "replace breakers": f"os.rename('{state}/breakers', '{shared}/b')",
        "plant": f"open('{state}/breakers/x', 'w')",
    }
    for name, action in attempts.items():
        res = users.run(
            ATTACKER, f"import os\ntry:\n    {action}\n    print('done')\nexcept OSError as e:\n    print(e)\n"
        )
        assert "done" not in res.stdout and "[Errno" in res.stdout, (name, res)  # EACCES or EPERM (sticky)
        users.record(f"swap/plant in the victim's state dir ({name})", res.stdout.split(":")[0])
    assert ok(users.run(VICTIM, code, home=home, env=env)).strip() == "42"


def test_umask_000_default_paths_are_private(users: Users) -> None:
    """V5 / 5d: with umask 000 and default XDG paths every sci_ext directory is 0700."""
    home = users.home("home-t4", mode=0o755)
    code = (
        "from sci_ext.core.config import ConfigManager\nm = ConfigManager(); m.set('rag.top_k', 3); m.save('user')\n"
        "from sci_ext.core.resilience import CircuitBreaker\nCircuitBreaker('openai').call(lambda: 1)\n"
        "from sci_ext.core.cache.store import DiskStore\nDiskStore(m.config.cache.dir).close()\n"
        "from sci_ext.core.security.audit import AuditLog\nfrom pathlib import Path\n"
        "AuditLog(Path(m.config.core.state_dir) / 'audit' / 'audit.jsonl').append('x')\n"
    )
    ok(users.run(VICTIM, code, home=home, umask=0o000))
    for sub in (".config", ".config/sci_ext", ".cache", ".cache/sci_ext", ".local", ".local/state"):
        assert (home / sub).stat().st_mode & 0o777 == 0o700, sub
    for sub in ("sci_ext", "sci_ext/breakers", "sci_ext/locks", "sci_ext/audit"):
        assert (home / ".local/state" / sub).stat().st_mode & 0o777 == 0o700, sub
    assert (home / ".config/sci_ext/config.toml").stat().st_mode & 0o777 == 0o600
    loose = [p for p in home.rglob("*") if p.is_file() and p.stat().st_mode & 0o077]
    assert loose == []
    marker = users.shared / "PWNED-t4"
    res = users.run(
        ATTACKER,
        EVIL.format(marker=marker) + "import os, diskcache\nfor src, dst in [\n"
        f"    ('{home}/.local/state/sci_ext/breakers', '{home}/moved'),\n"
        f"    ('{home}/.config/sci_ext/config.toml', '{home}/moved2')]:\n"
        "    try:\n        os.rename(src, dst); print('moved', src)\n    except OSError as e:\n        print(e)\n",
    )
    assert "moved " not in res.stdout and res.stdout.count("[Errno 13] Permission denied") == 2, res
    users.record("umask 000: swap ~/.local/state/sci_ext/breakers", "EPERM (0700)")
    users.record("umask 000: replace ~/.config/sci_ext/config.toml", "EPERM (0700)")
    ok(users.run(VICTIM, code, home=home, umask=0o000))
    assert not marker.exists()


def test_world_writable_home_is_refused_not_used(users: Users) -> None:
    """5d, worse: a 0777 home lets the attacker replace ~/.local; the victim refuses it."""
    home = users.home("home-t5", mode=0o777)
    marker = users.shared / "PWNED-t5"
    ok(
        users.run(
            ATTACKER,
            EVIL.format(marker=marker) + f"import os, diskcache\nos.makedirs('{home}/.local/state/sci_ext/breakers')\n"
            f"diskcache.Cache('{home}/.local/state/sci_ext/breakers').set('openai', Evil())\n",
        )
    )
    res = users.run(
        VICTIM,
        "from sci_ext.core.resilience import CircuitBreaker\n"
        "try:\n    CircuitBreaker('openai').call(lambda: 1)\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n",
        home=home,
        umask=0o000,
    )
    line = one_line(ok(res))
    assert line.startswith("UntrustedPathError") and "Fix:" in line and not marker.exists()
    users.record("0777 home: attacker-made ~/.local/state/sci_ext + pickle", "refused: " + line[:60])


def test_planted_audit_symlink_is_refused(users: Users) -> None:
    """V14 / 6c: audit/ pre-created by the attacker with audit.jsonl -> the victim's notes."""
    shared = users.sticky("t6")
    home = users.home("home-t6", mode=0o755)
    notes = home / "notes.txt"
    ok(users.run(VICTIM, f"open('{notes}', 'w').write('my notes\\n')", home=home))
    state = shared / "st"
    ok(
        users.run(
            ATTACKER,
            f"import os\nos.makedirs('{state}/audit'); os.chmod('{state}', 0o777); os.chmod('{state}/audit', 0o777)\n"
            f"os.symlink('{notes}', '{state}/audit/audit.jsonl')\n",
        )
    )
    res = users.run(
        VICTIM,
        "from sci_ext.core.security.audit import AuditLog\n"
        "try:\n"
        f"    AuditLog('{state}/audit/audit.jsonl').append('secret.set', name='OPENAI_API_KEY')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n",
        home=home,
        env={"SCI_EXT_CORE__STATE_DIR": str(state)},
    )
    line = one_line(ok(res))
    assert line.startswith("UntrustedPathError") and "audit directory" in line and "Fix:" in line
    assert notes.read_text() == "my notes\n"
    users.record("audit.jsonl symlink in attacker's audit dir", "refused, notes unchanged")


EMBED = """
import json, sys, warnings
try:
    from sci_ext.core.cache import cache_result

    @cache_result(backend="redis", ttl_seconds=600)
    def embed(doc):
        return {"doc": doc, "n": len(doc)}
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    sys.exit(0)
out = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for doc in sys.argv[1:]:
        out[doc] = embed(doc)
out["warnings"] = [str(w.message) for w in caught]
out["stats"] = embed.cache_stats()
print(json.dumps(out))
"""


def _embed(users: Users, home: Path, url: str, key: str | None, *docs: str):
    script = users.root / "embed.py"
    if not script.exists():
        script.write_text(EMBED)
        script.chmod(0o644)
    env = {"SCI_EXT_CACHE__REDIS_URL": url, "SCI_EXT_CACHE__DIR": str(home / "cells")}
    if key:
        env["SCI_EXT_CACHE__REDIS_SIGNING_KEY"] = key
    code = f"import sys; sys.argv = ['embed', *{list(docs)!r}]; exec(open('{script}').read())"
    return users.run(VICTIM, code, home=home, env=env)


def test_redis_cache_without_a_key_refuses_to_start(users: Users, redis_server) -> None:
    """V4 / 5e: no signing key, attacker entries in Redis: nothing is unpickled, one clear error."""
    marker = users.shared / "PWNED-t7"
    ok(
        users.run(
            ATTACKER,
            EVIL.format(marker=marker) + "import redis\nfrom sci_ext.core.cache.serialize import pack\n"
            f"r = redis.Redis.from_url('{redis_server.url}')\n"
            "for i in range(20):\n    r.set(f'sci_ext:cache:entry:{i:032x}', pack(Evil()).to_bytes())\n",
        )
    )
    home = users.home("home-t7")
    res = _embed(users, home, redis_server.url, None, "doc1")
    result = json.loads(ok(res).strip().splitlines()[-1])["error"]
    assert result.startswith("CacheError:") and "cache.redis_signing_key is not" in result
    assert "SCI_EXT_CACHE__REDIS_SIGNING_KEY" in result and not marker.exists()
    users.record("Redis cache without a signing key (+ planted pickles)", "refused to start")


def test_poisoned_and_moved_redis_entries_are_refused(users: Users, redis_server) -> None:
    """V10 / 5f / 5g: without the key the attacker can neither forge nor move signed entries."""
    key = "team-signing-key-0123456789"
    machine_a = users.home("home-t8a")
    first = json.loads(ok(_embed(users, machine_a, redis_server.url, key, "doc1")).strip().splitlines()[-1])
    assert first["doc1"] == {"doc": "doc1", "n": 4}
    import redis

    client = redis.Redis.from_url(redis_server.url)
    entry = "sci_ext:cache:entry:"
    (doc1_key,) = [k.decode()[len(entry) :] for k in client.scan_iter(entry + "*")]
    ok(_embed(users, machine_a, redis_server.url, key, "doc2"))
    (doc2_key,) = {k.decode()[len(entry) :] for k in client.scan_iter(entry + "*")} - {doc1_key}
    marker = users.shared / "PWNED-t8"
    prefix = "sci_ext:cache:"
    # 1. Poisoned: the attacker's pickle under doc2's key, unsigned and with a made-up signature.
    for signature in ("None", "b'\\x02' + bytes(40)"):
        ok(
            users.run(
                ATTACKER,
                EVIL.format(marker=marker) + "import redis\nfrom sci_ext.core.cache.serialize import pack\n"
                f"r = redis.Redis.from_url('{redis_server.url}')\nsig = {signature}\n"
                f"r.set('{prefix}entry:{doc2_key}', pack(Evil()).to_bytes())\n"
                f"r.delete('{prefix}sig:{doc2_key}') if sig is None else r.set('{prefix}sig:{doc2_key}', sig)\n",
            )
        )
        res = _embed(users, users.home(f"home-t8-p{len(signature)}"), redis_server.url, key, "doc2")
        out = json.loads(ok(res).strip().splitlines()[-1])
        assert out["doc2"] == {"doc": "doc2", "n": 4} and not marker.exists()
        assert any("never unpickled" in w for w in out["warnings"]), out
        users.record(f"poisoned Redis entry (signature {signature})", "refused, recomputed")
    # 2. Moved: doc1's signed entry copied under doc2's key (the review's embed('doc2') -> doc1).
    ok(
        users.run(
            ATTACKER,
            f"import redis\nr = redis.Redis.from_url('{redis_server.url}')\n"
            f"for part in ('entry', 'sig', 'meta'):\n"
            f"    r.set(f'{prefix}{{part}}:{doc2_key}', r.get(f'{prefix}{{part}}:{doc1_key}'))\n",
        )
    )
    res = _embed(users, users.home("home-t8-moved"), redis_server.url, key, "doc2")
    out = json.loads(ok(res).strip().splitlines()[-1])
    assert out["doc2"] == {"doc": "doc2", "n": 4}
    assert any("moved from another key" in w for w in out["warnings"]), out
    users.record("signed Redis entry moved to another key", "refused, recomputed")
    assert os.path.exists(machine_a / "cells")
