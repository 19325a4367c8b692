"""The hash-chained audit log and `jupyter sci audit verify`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from security_fixtures import cli

from sci_ext.core.security.audit import AuditLog, verify_audit_log


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit" / "audit.jsonl")
    for i in range(6):
        audit.append("secret.set", name=f"K{i}")
    return audit


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines()


def test_chain_is_valid_and_private(log: AuditLog) -> None:
    result = verify_audit_log(log.path)
    assert result.ok and result.records == 6, result.message
    records = log.records()
    assert [r["seq"] for r in records] == list(range(6))
    assert records[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in zip(records, records[1:]))
    assert oct(log.path.stat().st_mode & 0o777) == "0o600"
    assert oct(log.path.parent.stat().st_mode & 0o777) == "0o700"


def test_edited_record_fails_at_that_record(log: AuditLog) -> None:
    content = lines(log)
    record = json.loads(content[3])
    record["details"]["name"] = "SOMETHING_ELSE"
    content[3] = json.dumps(record)
    log.path.write_text("\n".join(content) + "\n")
    result = verify_audit_log(log.path)
    assert not result.ok and result.bad_seq == 3 and result.bad_line == 4
    assert "record 3 was modified" in result.message


def test_edited_record_with_recomputed_hash_fails_its_mac(log: AuditLog) -> None:
    from sci_ext.core.security.audit import record_hash

    content = lines(log)
    record = json.loads(content[2])
    record["event"] = "nothing.happened"
    record["hash"] = record_hash(record)
    content[2] = json.dumps(record)
    log.path.write_text("\n".join(content) + "\n")
    result = verify_audit_log(log.path)
    assert not result.ok and result.bad_seq == 2 and "MAC mismatch" in result.message


def test_deleted_record_is_reported_missing(log: AuditLog) -> None:
    content = lines(log)
    del content[2]
    log.path.write_text("\n".join(content) + "\n")
    result = verify_audit_log(log.path)
    assert not result.ok and result.bad_seq == 2 and "record 2 is missing" in result.message


def test_truncated_log_is_detected_through_the_head(log: AuditLog) -> None:
    content = lines(log)
    log.path.write_text("\n".join(content[:4]) + "\n")
    result = verify_audit_log(log.path)
    assert not result.ok and result.bad_seq == 4
    assert "record 4 is missing" in result.message and "truncated" in result.message


def test_removed_first_record(log: AuditLog) -> None:
    log.path.write_text("\n".join(lines(log)[1:]) + "\n")
    result = verify_audit_log(log.path)
    assert not result.ok and result.bad_seq == 0


def test_torn_last_line_is_reported_and_appends_continue(log: AuditLog) -> None:
    with open(log.path, "a") as handle:
        handle.write('{"seq": 6, "ts": "tor')
    result = verify_audit_log(log.path)
    assert not result.ok and result.bad_seq == 6 and "unreadable" in result.message
    record = log.append("after.crash")
    assert record["seq"] == 6  # chained onto the last good record, on a line of its own
    assert lines(log)[-1].startswith('{"actor"')


def test_replaced_last_record_is_detected(log: AuditLog) -> None:
    from sci_ext.core.security.audit import record_hash

    content = lines(log)
    record = json.loads(content[-1])
    record["event"] = "forged"
    record["hash"] = record_hash(record)
    content[-1] = json.dumps(record)
    log.path.write_text("\n".join(content) + "\n")
    result = verify_audit_log(log.path)
    assert not result.ok and result.bad_seq == 5 and "MAC mismatch" in result.message


def test_missing_log_is_fine(tmp_path: Path) -> None:
    assert verify_audit_log(tmp_path / "none.jsonl").ok


def test_listener_and_redaction(tmp_path: Path) -> None:
    from sci_ext.core.security import get_redactor

    audit = AuditLog(tmp_path / "a.jsonl")
    seen = []
    audit.subscribe(seen.append)
    audit.subscribe(lambda r: 1 / 0)  # a broken listener does not stop auditing
    get_redactor().add("LEAK", "leaked-value-123456")
    try:
        audit.append("oops", note="value was leaked-value-123456")
    finally:
        get_redactor().clear()
    assert seen and "leaked-value-123456" not in audit.path.read_text()
    assert "[REDACTED:LEAK]" in audit.path.read_text()


def test_cli_audit_verify(fast_vault) -> None:
    from sci_ext.core.security import get_security_manager

    sm = get_security_manager()
    sm.set_secret("K", "value-for-audit-cli")
    sm.generate_api_key("x")
    ok = cli("audit", "verify")
    assert ok.returncode == 0 and "chain intact" in ok.stdout, ok.stderr
    shown = cli("audit", "show", "-n", "2")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 2
    content = sm.audit_log.path.read_text().splitlines()
    record = json.loads(content[1])
    record["details"]["name"] = "EDITED"
    content[1] = json.dumps(record)
    sm.audit_log.path.write_text("\n".join(content) + "\n")
    bad = cli("audit", "verify")
    assert bad.returncode == 1
    assert "record 1 was modified" in bad.stderr and bad.stderr.count("\n") == 1
    other = cli("audit", "verify", "--path", str(sm.audit_log.path.parent / "none.jsonl"))
    assert other.returncode == 0
