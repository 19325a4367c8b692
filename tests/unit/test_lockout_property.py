"""Review 2026-12-b R1 as a property: whatever others send, a valid API key is never refused or slowed."""

from __future__ import annotations

from clock import Clock
from hypothesis import given, settings
from hypothesis import strategies as st

from sci_ext.core.errors import AuthenticationError, RateLimitExceeded

CLIENTS = ["127.0.0.1", "::ffff:127.0.0.1", "10.0.0.2"]

#: What another process sends: nothing, a malformed header, a random key, or the owner's key id
#: with a wrong secret (key ids are not secret), from any client; the clock may move on.
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["anonymous", "malformed", "random-key", "forged-id", "wait"]),
        st.sampled_from(CLIENTS),
    ),
    max_size=40,
)


@settings(max_examples=15, deadline=None)
@given(actions=ACTIONS, owner=st.sampled_from(CLIENTS))
def test_a_valid_key_is_never_locked_out_by_others(tmp_path_factory, actions, owner) -> None:
    from sci_ext.core.security import SecurityManager

    base = tmp_path_factory.mktemp("lockout")
    clock = Clock()
    waited: list[float] = []
    sm = SecurityManager(
        vault_path=base / "data" / "vault.json",
        state_dir=base / "state",
        max_auth_failures_per_minute=3,
        lockout_seconds=300,
        clock=clock,
        prompt=None,
    )
    sm.lockout.sleep = waited.append
    sm.lockout.global_failures_per_minute = 5  # reached quickly: the budget is exercised too
    sm.lockout._global.capacity = sm.lockout._global.tokens = 5.0
    good = sm.generate_api_key("scraper")
    key_id = good.split("_")[1]
    for action, client in actions:
        if action == "wait":
            clock.now += 30
        elif action == "anonymous":
            assert sm.record_auth_failure(client, "missing") is False
        elif action == "malformed":
            sm.record_auth_failure(client, "malformed")
        else:
            token = f"sci_{key_id}_" + "z" * 43 if action == "forged-id" else "sci_0123456789ab_" + "z" * 43
            try:
                sm.validate_api_key(token, client=client)
            except (AuthenticationError, RateLimitExceeded):
                pass
            else:  # pragma: no cover - a wrong secret must never pass
                raise AssertionError("a wrong secret was accepted")
        before = len(waited)
        assert sm.validate_api_key(good, client=owner).name == "scraper"
        assert len(waited) == before  # and never slowed down by the budget
