"""The audit of failures without a credential: bounded writes, nothing uncounted (core/security/anonymous.py).

Every anonymous failed request used to be one audit record, three fsyncs (log, head,
anchor): a flood made the disk work and the log grow for free. Now each client's first
failure in a window is audited at once and the rest summed in one record per client and
window; a failure that presents a credential is still audited on its own.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any

import pytest
from clock import Clock
from hypothesis import given, settings
from hypothesis import strategies as st

from sci_ext.core.errors import AuthenticationError
from sci_ext.core.security import SecurityManager
from sci_ext.core.security.anonymous import MORE_CLIENTS, AnonymousFailureAudit


def _manager(**kwargs: Any) -> SecurityManager:
    from sci_ext.core.config import get_config

    return SecurityManager.from_config(get_config(), clock=Clock(), **kwargs)


def _events(sm: SecurityManager, event: str) -> list[dict[str, Any]]:
    return [r["details"] for r in sm.audit_log.records() if r["event"] == event]


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ``os.fsync`` call of the test's thread (the audit log's, its head's and its
    anchor's), counted.  Only that thread's: a background thread an earlier test in the same
    worker left running (an audit window's timer, a history writer) may fsync meanwhile, which
    made the counts flaky in the full run."""
    calls: list[int] = []
    real = os.fsync
    test_thread = threading.get_ident()

    def counting(fd: int) -> None:
        if threading.get_ident() == test_thread:
            calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_an_anonymous_flood_costs_bounded_fsyncs_and_is_still_counted(fast_vault, fsyncs: list[int]) -> None:
    sm = _manager()
    seen: list[tuple[str, str]] = []
    sm.on_auth_failure(lambda client, reason: seen.append((client, reason)))
    sm.audit("test.start")  # the audit key and files exist: what follows is the flood's cost only
    before = len(fsyncs)
    for i in range(1000):
        assert sm.record_auth_failure("10.0.0.1" if i % 4 else "10.0.0.2", "missing") is False
    # Two clients: two records (the first failure of each), three fsyncs each, for 1,000 failures.
    assert len(fsyncs) - before == 6
    assert [d["client"] for d in _events(sm, "auth.failure")] == ["10.0.0.2", "10.0.0.1"]
    # Counters and hooks (metrics, alerts) still see every failure at once; nothing strikes.
    assert sm.auth_failures_total == 1000 and len(seen) == 1000 and sm.lockout.lockouts == 0
    assert sm.anonymous_audit.pending() == 998
    # The window's end writes one sum per client: every failure is in the log, counted.
    assert sm.flush_audit() == 2
    sums = {d["client"]: d for d in _events(sm, "auth.failure_summary")}
    assert {c: d["count"] for c, d in sums.items()} == {"10.0.0.1": 750, "10.0.0.2": 250}
    assert all(d["reason"] == "missing" and d["first"] <= d["last"] for d in sums.values())
    assert sm.anonymous_audit.pending() == 0 and sm.flush_audit() == 0
    assert sm.verify_audit().ok
    # The next window starts with a first record again.
    sm.record_auth_failure("10.0.0.1", "missing")
    assert len(_events(sm, "auth.failure")) == 3


def test_a_failure_with_a_credential_is_still_audited_on_its_own(fast_vault, fsyncs: list[int]) -> None:
    sm = _manager()
    sm.audit("test.start")
    before = len(fsyncs)
    for _ in range(5):
        assert sm.record_auth_failure("10.0.0.3", "malformed") is False
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            sm.validate_api_key("sci_0123456789ab_" + "A" * 43, client="10.0.0.3")
    reasons = Counter(d["reason"] for d in _events(sm, "auth.failure"))
    assert reasons == {"malformed": 5, "invalid": 3}  # at once, one record each, no flush needed
    assert len(fsyncs) - before == 8 * 3
    assert sm.flush_audit() == 0 and not _events(sm, "auth.failure_summary")


def test_the_window_ends_on_its_own_timer(fast_vault) -> None:
    sm = _manager(anonymous_audit_window=0.2)
    for _ in range(5):
        sm.record_auth_failure("10.0.0.4", "missing")
    deadline = time.monotonic() + 10
    while not _events(sm, "auth.failure_summary") and time.monotonic() < deadline:
        time.sleep(0.05)
    (summary,) = _events(sm, "auth.failure_summary")
    assert summary["count"] == 5 and summary["window_seconds"] == 0.2
    assert sm.verify_audit().ok


def test_a_replaced_manager_writes_its_pending_sums(fast_vault) -> None:
    from sci_ext.core.security import get_security_manager, set_security_manager

    sm = get_security_manager()
    for _ in range(3):
        sm.record_auth_failure("10.0.0.5", "missing")
    set_security_manager(None)  # a config change rebuilds the manager the same way
    (summary,) = _events(sm, "auth.failure_summary")
    assert summary["count"] == 3


def test_rotating_clients_are_summed_beyond_max_clients() -> None:
    written: list[tuple[str, dict[str, Any]]] = []
    audit = AnonymousFailureAudit(lambda event, **d: written.append((event, d)), window=3600, max_clients=3)
    for round_ in range(2):
        for i in range(500):
            audit.note(f"10.1.{i // 256}.{i % 256}")
    assert [e for e, _ in written] == ["auth.failure"] * 3  # the first three clients
    assert audit.flush() == 4
    sums = {d["client"]: d for e, d in written if e == "auth.failure_summary"}
    assert sums[MORE_CLIENTS]["count"] == 994 and sums[MORE_CLIENTS]["clients"] == 497
    assert sum(d["count"] for d in sums.values()) == 1000
    audit.close()


@settings(max_examples=60, deadline=None)
@given(
    clients=st.lists(st.integers(0, 7), max_size=60),
    max_clients=st.integers(1, 4),
    flush_at=st.sets(st.integers(1, 59), max_size=3),
)
def test_every_failure_is_in_exactly_one_record_and_records_are_bounded(
    clients: list[int], max_clients: int, flush_at: set[int]
) -> None:
    """Whatever the clients and wherever windows end: each window's records add up to its failures."""
    written: list[tuple[str, dict[str, Any]]] = []
    audit = AnonymousFailureAudit(lambda event, **d: written.append((event, d)), window=3600, max_clients=max_clients)
    cuts = sorted(i for i in flush_at if i < len(clients))
    for window in [clients[a:b] for a, b in zip([0, *cuts], [*cuts, len(clients)], strict=True)]:
        start = len(written)
        for client in window:
            audit.note(f"c{client}")
        audit.flush()
        records = written[start:]
        sums = {d["client"]: d["count"] for e, d in records if e == "auth.failure_summary"}
        firsts = [d["client"] for e, d in records if e == "auth.failure"]
        # A sum includes its client's first record; a first without a sum stands for one failure.
        assert sum(sums.values()) + sum(1 for c in firsts if c not in sums) == len(window)
        assert len(firsts) == min(len(set(window)), max_clients) and len(set(firsts)) == len(firsts)
        assert len(records) <= 2 * max_clients + 1
        assert all(d["reason"] == "missing" for _, d in records)
    assert audit.pending() == 0
    audit.close()
