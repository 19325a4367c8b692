"""Review 3c/3f and V17: normalised client ids, pruned buckets, the global failure budget, strict tokens."""

from __future__ import annotations

import pytest
from clock import Clock

from sci_ext.core.errors import AuthenticationError, RateLimitExceeded
from sci_ext.core.security import Lockout, SecurityManager, add_failure_budget_hook, normalize_client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sm(fast_vault, clock: Clock) -> SecurityManager:
    from sci_ext.core.config import get_config

    manager = SecurityManager.from_config(get_config(), clock=clock)
    manager.lockout.sleep = lambda seconds: None  # the delay is counted, not slept, in tests
    return manager


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (" 1.2.3.4", "1.2.3.4"),
        ("1.2.3.4\t", "1.2.3.4"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("[::FFFF:1.2.3.4]", "1.2.3.4"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("", "unknown"),
        (None, "unknown"),
        ("evil\u2028id\n", "evil\\u2028id"),
        ("x" * 5000, None),
    ],
)
def test_client_ids_are_normalised(raw: object, normal: str | None) -> None:
    got = normalize_client(raw)
    if normal is None:
        assert len(got) <= 200
    else:
        assert got == normal


def test_spellings_of_one_address_share_a_bucket(sm: SecurityManager) -> None:
    spellings = ["1.2.3.4", " 1.2.3.4", "::ffff:1.2.3.4", "[::ffff:1.2.3.4]", "1.2.3.4 "]
    for i in range(11):
        with pytest.raises(AuthenticationError):
            sm.validate_api_key("bad-token", client=spellings[i % len(spellings)])
    for spelling in spellings:
        with pytest.raises(RateLimitExceeded, match=r"client 1\.2\.3\.4 \(key -\) is locked out"):
            sm.validate_api_key("bad-token", client=spelling)
    clients = {r["details"]["client"] for r in sm.audit_log.records() if r["event"] == "auth.failure"}
    assert clients == {"1.2.3.4"}


def test_token_with_a_trailing_newline_is_rejected(sm: SecurityManager) -> None:
    token = sm.generate_api_key("prom")
    assert sm.validate_api_key(token).name == "prom"
    for variant in (token + "\n", token + "\r\n", " " + token, token + " ", "\n" + token):
        with pytest.raises(AuthenticationError):
            sm.validate_api_key(variant)


def test_idle_buckets_are_pruned(clock: Clock) -> None:
    lockout = Lockout(10, 300, clock=clock, max_clients=1000, global_failures_per_minute=10**9)
    for i in range(20000):
        lockout.failure(f"10.0.{i // 256}.{i % 256}")
        assert lockout.clients <= 1001
    clock.now += 61  # every bucket refilled
    lockout.failure("one more")
    assert lockout.clients == 1


def test_locked_clients_survive_pruning(clock: Clock) -> None:
    lockout = Lockout(2, 300, clock=clock, max_clients=10, global_failures_per_minute=10**9)
    for _ in range(3):
        lockout.failure("attacker")
    assert lockout.is_locked("attacker")
    for i in range(100):
        lockout.failure(f"id-{i}")
    assert lockout.is_locked("attacker")


def test_rotating_client_ids_hit_the_global_budget(sm: SecurityManager, clock: Clock) -> None:
    """200 distinct ids, one failure each: none is locked, but the budget slows failing attempts and alerts once."""
    alerts: list[int] = []
    undo = add_failure_budget_hook(alerts.append)
    waited: list[float] = []
    sm.lockout.sleep = waited.append
    try:
        budget = sm.lockout.global_failures_per_minute
        assert budget == 100  # ten clients' worth of the default 10 per minute
        for i in range(200):
            with pytest.raises(AuthenticationError):
                sm.validate_api_key("sci_000000000000_" + "A" * 43, client=f"10.9.{i // 256}.{i % 256}")
    finally:
        undo()
    assert alerts == [budget]  # once per minute, not once per failure
    assert sm.lockout.lockouts == 0
    assert len(waited) >= 90 and set(waited) == {sm.lockout.global_delay}
    events = [r["event"] for r in sm.audit_log.records()]
    assert events.count("auth.failure") == 200 and events.count("auth.failure_budget_exceeded") == 1
    token = sm.generate_api_key("still-works")
    before = len(waited)
    assert sm.lockout.over_budget()
    # only failing attempts wait (review R1): a good key is neither refused nor slowed
    assert sm.validate_api_key(token, client="10.9.9.9").name == "still-works"
    assert len(waited) == before
    clock.now += 120  # the budget refills
    sm.validate_api_key(token, client="10.9.9.9")
    assert len(waited) == before and not sm.lockout.over_budget()
    assert sm.verify_audit().ok
