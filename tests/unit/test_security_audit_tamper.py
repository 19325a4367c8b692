"""Review 4a/4b (V8, V12): every tamper case against the keyed audit chain, and hostile client ids.

The attacker here can rewrite the audit directory (log and head) but cannot read
or write the key directory (audit key and anchor): the README says what the chain
does not detect when both directories are in the attacker's hands.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from sci_ext.core.security.audit import AuditLog, record_hash, verify_audit_log

Tamper = Callable[[AuditLog], None]


def _lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().split(b"\n")[:-1]


def _write(log: AuditLog, lines: list[bytes]) -> None:
    log.path.write_bytes(b"\n".join(lines) + b"\n")


def _edit(index: int, recompute: bool = False) -> Tamper:
    def tamper(log: AuditLog) -> None:
        lines = _lines(log)
        record = json.loads(lines[index])
        record["details"]["name"] = "EDITED"
        if recompute:
            record["hash"] = record_hash(record)
        lines[index] = json.dumps(record).encode()
        _write(log, lines)

    return tamper


def _rechain_without(index: int, rewrite_head: bool) -> Tamper:
    """Delete a record, then recompute every later hash, prev link and the head (all but the MACs)."""

    def tamper(log: AuditLog) -> None:
        records = [json.loads(x) for x in _lines(log)]
        del records[index]
        prev = "0" * 64
        for seq, record in enumerate(records):
            record["seq"], record["prev"] = seq, prev
            record["hash"] = prev = record_hash(record)
        _write(log, [json.dumps(r).encode() for r in records])
        if rewrite_head:
            log.head_path.write_text(json.dumps({"seq": records[-1]["seq"], "hash": records[-1]["hash"]}))

    return tamper


def _truncate(keep: int, head: str) -> Tamper:
    def tamper(log: AuditLog) -> None:
        lines = _lines(log)
        _write(log, lines[:keep])
        if head == "delete":
            log.head_path.unlink()
        elif head == "rewrite":
            last = json.loads(lines[keep - 1])
            log.head_path.write_text(json.dumps({"seq": last["seq"], "hash": last["hash"]}))

    return tamper


def _swap(log: AuditLog) -> None:
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    _write(log, lines)


def _duplicate(log: AuditLog) -> None:
    lines = _lines(log)
    _write(log, [*lines[:3], lines[2], *lines[3:]])


def _forge_unkeyed_tail(log: AuditLog) -> None:
    lines = _lines(log)
    last = json.loads(lines[-1])
    forged = {**last, "seq": last["seq"] + 1, "prev": last["hash"], "event": "secret.read"}
    forged.pop("mac")
    forged["hash"] = record_hash(forged)
    _write(log, [*lines, json.dumps(forged).encode()])
    log.head_path.write_text(json.dumps({"seq": forged["seq"], "hash": forged["hash"]}))


def _torn(log: AuditLog) -> None:
    with open(log.path, "ab") as handle:
        handle.write(b'{"seq": 6, "ts": "tor')


def _delete_log(log: AuditLog) -> None:
    log.path.unlink()


def _delete_log_and_head(log: AuditLog) -> None:
    log.path.unlink()
    log.head_path.unlink()


def _delete_anchor(log: AuditLog) -> None:
    log.anchor_path.unlink()


def _edit_anchor(log: AuditLog) -> None:
    anchor = json.loads(log.anchor_path.read_text())
    anchor["seq"] = 2
    log.anchor_path.write_text(json.dumps(anchor))


def _delete_key(log: AuditLog) -> None:
    (log.key_dir / "audit.key").unlink()


def _first_removed(log: AuditLog) -> None:
    _write(log, _lines(log)[1:])


def _delete_middle(log: AuditLog) -> None:
    lines = _lines(log)
    del lines[2]
    _write(log, lines)


CASES: dict[str, Tamper] = {
    "edit a record": _edit(3),
    "edit a record, recompute its hash": _edit(2, recompute=True),
    "edit the last record, recompute its hash": _edit(5, recompute=True),
    "delete a middle record": _delete_middle,
    "delete the first record": _first_removed,
    "swap two records": _swap,
    "duplicate a record": _duplicate,
    "append a forged record without the key": _forge_unkeyed_tail,
    "torn last line": _torn,
    "truncate (head kept)": _truncate(4, "keep"),
    "truncate + delete head": _truncate(4, "delete"),
    "truncate + rewrite head": _truncate(4, "rewrite"),
    "delete log (head present)": _delete_log,
    "delete log + head": _delete_log_and_head,
    "delete record + recompute chain + head": _rechain_without(2, rewrite_head=True),
    "delete last record + recompute chain + head": _rechain_without(5, rewrite_head=True),
    "delete the anchor": _delete_anchor,
    "edit the anchor": _edit_anchor,
    "delete the audit key": _delete_key,
}


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "state" / "audit" / "audit.jsonl", key_dir=tmp_path / "keys")
    for i in range(6):
        audit.append("secret.set", name=f"K{i}")
    assert verify_audit_log(audit.path, audit.key_dir).ok
    return audit


@pytest.mark.parametrize("case", list(CASES))
def test_every_tamper_case_is_detected(log: AuditLog, case: str) -> None:
    CASES[case](log)
    result = verify_audit_log(log.path, log.key_dir)
    assert not result.ok, (case, result.message)
    assert result.message.count("\n") == 0 and str(log.path) in result.message


def test_blank_line_is_benign(log: AuditLog) -> None:
    lines = _lines(log)
    _write(log, [*lines[:2], b"", *lines[2:]])
    result = verify_audit_log(log.path, log.key_dir)
    assert result.ok and result.records == 6, result.message


def test_byte_flips_at_every_position_are_detected(log: AuditLog) -> None:
    """Flip each byte of the log (random non-zero XOR mask): tried == detected."""
    original = log.path.read_bytes()
    rng = random.Random(8)
    tried = detected = 0
    for position in range(len(original)):
        data = bytearray(original)
        data[position] ^= rng.randrange(1, 256)
        log.path.write_bytes(bytes(data))
        tried += 1
        detected += not verify_audit_log(log.path, log.key_dir).ok
    log.path.write_bytes(original)
    print(f"audit byte flips: {tried} tried, {detected} detected")
    assert tried == len(original) > 1000
    assert detected == tried


@pytest.mark.parametrize(
    "client",
    ["evil\u2028client", "a\u2029b\u0085c\x1b[2J\r\n{", "A" * 70000, "\ud800broken", "x\x00y"],
    ids=["U+2028", "separators", "70kB", "lone-surrogate", "NUL"],
)
def test_hostile_client_ids_keep_an_honest_log_verifiable(log: AuditLog, client: str) -> None:
    log.append("auth.failure", client=client, reason="invalid")
    log.append("auth.failure", client="ok", reason="invalid")
    records = log.records()
    assert [r["seq"] for r in records] == list(range(8))  # never restarts at 0
    assert len(records[6]["details"]["client"]) <= 200
    assert all(ch not in records[6]["details"]["client"] for ch in "\u2028\u2029\u0085\r\n\x00\x1b")
    assert log.path.read_bytes().count(b"\n") == 8
    result = verify_audit_log(log.path, log.key_dir)
    assert result.ok and result.records == 8, result.message


def test_last_record_found_behind_a_long_record(log: AuditLog) -> None:
    log.append("big", blob=["x" * 199] * 100)  # ~20 kB record
    for _ in range(4):
        log.append("big", blob=["y" * 199] * 100)
    assert log.append("after")["seq"] == 11
    assert verify_audit_log(log.path, log.key_dir).ok


def test_the_key_and_anchor_are_private_and_outside_the_log_dir(log: AuditLog) -> None:
    key = log.key_dir / "audit.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert log.anchor_path.parent == log.key_dir != log.path.parent
    assert oct(log.key_dir.stat().st_mode & 0o777) == "0o700"


def test_a_pre_keyed_log_stays_valid_and_is_continued_with_macs(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    prev = "0" * 64
    rows = []
    for seq in range(3):  # as sci_ext wrote them before the keyed chain
        record = {"seq": seq, "ts": "t", "event": "e", "actor": {}, "details": {}, "prev": prev}
        record["hash"] = prev = record_hash(record)
        rows.append(json.dumps(record))
    path.write_text("\n".join(rows) + "\n")
    log = AuditLog(path, key_dir=tmp_path / "keys")
    log.append("next")
    result = verify_audit_log(path, log.key_dir)
    assert result.ok and "3 unkeyed" in result.message, result.message
    os.unlink(log.anchor_path)
    assert not verify_audit_log(path, log.key_dir).ok


def test_cli_verify_reports_a_log_deleted_with_its_head(fast_vault) -> None:
    from security_fixtures import cli

    from sci_ext.core.security import get_security_manager

    sm = get_security_manager()
    sm.set_secret("K", "value-for-audit-cli")
    assert cli("audit", "verify").returncode == 0
    sm.audit_log.path.unlink()
    sm.audit_log.head_path.unlink()
    bad = cli("audit", "verify")
    assert bad.returncode == 1, bad.stdout
    assert "audit log was deleted" in bad.stderr and bad.stderr.count("\n") == 1
    assert "value-for-audit-cli" not in bad.stdout + bad.stderr
