"""API keys, token buckets and lockout."""

from __future__ import annotations

import json
import re
import threading

import pytest
from clock import Clock

from sci_ext.core.errors import AuthenticationError, RateLimitExceeded, SecurityError
from sci_ext.core.security import Lockout, SecurityManager, TokenBucket, get_security_manager


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sm(fast_vault, clock: Clock) -> SecurityManager:
    from sci_ext.core.config import get_config

    return SecurityManager.from_config(get_config(), clock=clock)


def test_generate_returns_the_token_once_and_stores_only_a_hash(sm: SecurityManager) -> None:
    token = sm.generate_api_key("prometheus", ("metrics:read",), ttl_seconds=3600)
    assert re.fullmatch(r"sci_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    key_id, secret = token.split("_", 2)[1:]
    path = sm.apikeys.path
    assert path.parent == sm.vault.path.parent
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    stored = path.read_text()
    assert secret not in stored and token not in stored
    record = json.loads(stored)["keys"][key_id]
    assert set(record) == {"name", "scopes", "created", "expires", "salt", "hash"}
    info = sm.validate_api_key(token, "metrics:read")
    assert info.key_id == key_id and info.name == "prometheus"
    assert [k.key_id for k in sm.list_api_keys()] == [key_id]
    assert secret not in repr(sm.list_api_keys())


def test_spec_snippet_default_scope(fast_vault) -> None:
    api_key = get_security_manager().generate_api_key("test")
    assert get_security_manager().validate_api_key(api_key).scopes == ("metrics:read",)


@pytest.mark.parametrize(
    "bad",
    ["", "garbage", "sci_000000000000_" + "A" * 43, None, 42],
)
def test_invalid_tokens_are_rejected(sm: SecurityManager, bad) -> None:
    sm.generate_api_key("x")
    with pytest.raises(AuthenticationError, match="invalid API key"):
        sm.validate_api_key(bad, client=f"c-{bad!r}")


def test_tampered_secret_part_is_rejected(sm: SecurityManager) -> None:
    token = sm.generate_api_key("x")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(AuthenticationError):
        sm.validate_api_key(flipped)


def test_scope_expiry_and_revoke(sm: SecurityManager, monkeypatch) -> None:
    token = sm.generate_api_key("x", ("metrics:read",), ttl_seconds=60)
    with pytest.raises(AuthenticationError, match="lacks the scope 'admin'"):
        sm.validate_api_key(token, "admin")
    star = sm.generate_api_key("all", ("*",))
    assert sm.validate_api_key(star, "anything:at-all")
    import time as time_module

    real = time_module.time
    monkeypatch.setattr(time_module, "time", lambda: real() + 120)
    with pytest.raises(AuthenticationError, match="expired"):
        sm.validate_api_key(token)
    monkeypatch.undo()
    info = sm.revoke_api_key(token.split("_")[1])
    assert info.name == "x"
    with pytest.raises(AuthenticationError):
        sm.validate_api_key(token)
    with pytest.raises(KeyError):
        sm.revoke_api_key("000000000000")


def test_bad_generate_arguments(sm: SecurityManager) -> None:
    with pytest.raises(SecurityError, match="name"):
        sm.generate_api_key("")
    with pytest.raises(SecurityError, match="at least one scope"):
        sm.generate_api_key("x", ())
    with pytest.raises(SecurityError, match="invalid scope"):
        sm.generate_api_key("x", ("Bad Scope",))
    with pytest.raises(SecurityError, match="ttl_seconds"):
        sm.generate_api_key("x", ttl_seconds=0)


def test_rotate_api_key_does_not_deadlock(sm: SecurityManager) -> None:
    token = sm.generate_api_key("scraper", ("metrics:read", "status:read"))
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(sm.rotate_api_key(token.split("_")[1])))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "rotate_api_key deadlocked"
    new = result[0]
    assert sm.validate_api_key(new, "status:read").name == "scraper"
    with pytest.raises(AuthenticationError):
        sm.validate_api_key(token)


def test_hooks_may_call_back_into_the_manager(sm: SecurityManager) -> None:
    """Re-entrant paths: a failure hook and a lockout hook that use the manager again."""
    seen = []
    sm.on_auth_failure(lambda client, reason: seen.append(("fail", client, len(sm.list_api_keys()))))
    sm.on_lockout(lambda client, seconds: seen.append(("lock", client, sm.lockout.is_locked(client))))
    done = threading.Event()

    def attack() -> None:
        for _ in range(12):
            try:
                sm.validate_api_key("nope", client="10.0.0.9")
            except (AuthenticationError, RateLimitExceeded):
                pass
        done.set()

    threading.Thread(target=attack).start()
    assert done.wait(10), "deadlock in failure/lockout hooks"
    assert ("lock", "10.0.0.9 (key -)", True) in seen


def test_lockout_after_ten_failures_and_unlock_after_the_window(sm: SecurityManager, clock: Clock) -> None:
    good = sm.generate_api_key("good")
    bad = "sci_000000000000_" + "x" * 43
    for _ in range(10):
        with pytest.raises(AuthenticationError):
            sm.validate_api_key(bad, client="1.2.3.4")
    assert not sm.is_locked_out("1.2.3.4", "000000000000")
    with pytest.raises(AuthenticationError):  # the 11th failure in a minute locks the pair out
        sm.validate_api_key(bad, client="1.2.3.4")
    assert sm.is_locked_out("1.2.3.4", "000000000000")
    with pytest.raises(RateLimitExceeded, match="locked out for 300 more second"):
        sm.validate_api_key(bad, client="1.2.3.4")
    # review R1: the lockout is keyed on (client, presented key id); a good key from the same
    # client is never refused because of another key's failures
    assert sm.validate_api_key(good, client="1.2.3.4").name == "good"
    with pytest.raises(AuthenticationError):  # another key id from the same client: its own bucket
        sm.validate_api_key("sci_111111111111_" + "x" * 43, client="1.2.3.4")
    clock.now += 299
    with pytest.raises(RateLimitExceeded):
        sm.validate_api_key(bad, client="1.2.3.4")
    clock.now += 2
    with pytest.raises(AuthenticationError):  # the lockout ended: evaluated (401) again
        sm.validate_api_key(bad, client="1.2.3.4")
    assert sm.auth_failures_total == 15  # locked attempts are counted ...
    events = [r["event"] for r in sm.audit_log.records()]
    assert events.count("auth.failure") == 13 and events.count("auth.lockout") == 1  # ... but not audited
    assert good.split("_", 2)[2] not in sm.audit_log.path.read_text()


def test_a_good_key_is_accepted_even_when_its_own_id_is_locked(sm: SecurityManager) -> None:
    """Key ids are not secret: whoever knows one must not be able to lock its owner out (R1)."""
    good = sm.generate_api_key("owner")
    key_id = good.split("_")[1]
    forged = f"sci_{key_id}_" + "y" * 43
    for _ in range(12):
        with pytest.raises((AuthenticationError, RateLimitExceeded)):
            sm.validate_api_key(forged, client="127.0.0.1")
    assert sm.is_locked_out("127.0.0.1", key_id)
    assert sm.validate_api_key(good, client="127.0.0.1").name == "owner"
    with pytest.raises(RateLimitExceeded):  # while the forger stays refused
        sm.validate_api_key(forged, client="127.0.0.1")


def test_anonymous_failures_are_counted_and_audited_but_never_strike(sm: SecurityManager) -> None:
    good = sm.generate_api_key("scraper")
    for _ in range(50):
        assert sm.record_auth_failure("127.0.0.1", "missing") is False
    assert sm.lockout.lockouts == 0 and sm.auth_failures_total == 50
    # The first is audited at once, the other 49 in one sum (tests/unit/test_security_anonymous_audit.py).
    events = [r for r in sm.audit_log.records() if r["event"] == "auth.failure"]
    assert len(events) == 1 and {e["details"]["reason"] for e in events} == {"missing"}
    assert sm.flush_audit() == 1
    (summary,) = [r for r in sm.audit_log.records() if r["event"] == "auth.failure_summary"]
    assert summary["details"]["count"] == 50 and summary["details"]["reason"] == "missing"
    assert sm.validate_api_key(good, client="127.0.0.1").name == "scraper"
    # a presented but malformed credential does strike (its own pair)
    locked = [sm.record_auth_failure("127.0.0.1", "malformed") for _ in range(11)]
    assert locked[-1] is False and sm.record_auth_failure("127.0.0.1", "malformed") is True
    assert sm.validate_api_key(good, client="127.0.0.1").name == "scraper"


def test_failures_spread_over_time_refill_the_bucket(sm: SecurityManager, clock: Clock) -> None:
    for _ in range(30):  # one failure every 10 s is 6 a minute: never locked
        with pytest.raises(AuthenticationError):
            sm.validate_api_key("bad", client="slow")
        clock.now += 10
    assert not sm.lockout.is_locked("slow")


def test_process_wide_hooks_survive_a_manager_rebuild(fast_vault) -> None:
    from sci_ext.core.config import get_config_manager
    from sci_ext.core.security import add_auth_failure_hook, add_lockout_hook

    failures, lockouts = [], []
    undo = [
        add_auth_failure_hook(lambda c, r: failures.append((c, r))),
        add_lockout_hook(lambda c, s: lockouts.append(c)),
    ]
    try:
        get_config_manager().set("security.max_auth_failures_per_minute", 1)
        sm = get_security_manager()
        for _ in range(2):
            with pytest.raises(AuthenticationError):
                sm.validate_api_key("bad", client="scraper")
        assert failures == [("scraper", "invalid")] * 2 and lockouts == ["scraper (key -)"]
    finally:
        for u in undo:
            u()
    with pytest.raises(RateLimitExceeded):
        sm.validate_api_key("bad", client="scraper")
    assert len(failures) == 2


def test_token_bucket() -> None:
    bucket = TokenBucket(capacity=2, rate=1.0)
    assert bucket.take(10.0) and bucket.take(10.0) and not bucket.take(10.0)
    assert bucket.take(11.0) and not bucket.full(11.0)
    assert bucket.full(20.0)


def test_lockout_config_is_used(fast_vault, monkeypatch) -> None:
    from sci_ext.core.config import get_config_manager

    get_config_manager().set_many({"security.max_auth_failures_per_minute": 2, "security.lockout_seconds": 5})
    sm = get_security_manager()
    assert isinstance(sm.lockout, Lockout)
    assert (sm.lockout.max_failures_per_minute, sm.lockout.lockout_seconds) == (2, 5)


def test_concurrent_validation(sm: SecurityManager) -> None:
    tokens = [sm.generate_api_key(f"k{i}") for i in range(4)]
    errors: list[BaseException] = []

    def work(token: str) -> None:
        try:
            for _ in range(200):
                sm.validate_api_key(token)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    sm.generate_api_key("while-validating")  # the store is rewritten meanwhile
    for t in threads:
        t.join(30)
    assert errors == []


def test_damaged_or_open_key_file_is_refused(sm: SecurityManager) -> None:
    sm.generate_api_key("x")
    path = sm.apikeys.path
    path.chmod(0o644)
    with pytest.raises(SecurityError, match="chmod 600"):
        sm.list_api_keys()
    path.chmod(0o600)
    path.write_text("{not json")
    with pytest.raises(SecurityError, match="damaged"):
        sm.list_api_keys()
