"""A hash-chained, append-only audit log (JSON lines).

Each record holds ``seq`` (0, 1, 2, ...), ``ts``, ``event``, ``actor``, ``details``,
``prev`` (the hash of the previous record; 64 zeros for the first) and ``hash``
(SHA-256 of the record's canonical JSON without ``hash``).  Editing a record breaks
its hash, removing one breaks the ``seq``/``prev`` link of the next, and a *head*
file beside the log (last ``seq`` and ``hash``, replaced atomically on every append)
reveals records cut off the end.  Values of secrets are never written: details are
passed through the redactor and must only hold names.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .redact import get_redactor

__all__ = ["GENESIS", "AuditLog", "AuditVerification", "verify_audit_log"]

GENESIS = "0" * 64


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of ``record`` without its ``hash`` field."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def _actor() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


class AuditLog:
    """Append records to one audit file, safely across threads and processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    @property
    def head_path(self) -> Path:
        """The file that remembers the last record (to detect truncation)."""
        return self.path.with_name(self.path.name + ".head")

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(record)`` after each append (metrics, alerts)."""
        self._listeners.append(listener)

    def _last(self) -> tuple[int, str]:
        """(seq, hash) of the last complete record, from the end of the file."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                chunk = min(size, 65536)
                handle.seek(size - chunk)
                lines = handle.read(chunk).splitlines()
        except FileNotFoundError:
            return -1, GENESIS
        for raw in reversed(lines):
            try:
                record = json.loads(raw)
                return int(record["seq"]), str(record["hash"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line from a crash: chain onto the last good record
        return -1, GENESIS

    def append(self, event: str, **details: Any) -> dict[str, Any]:
        """Write one record and return it."""
        from filelock import FileLock

        from ..trust import ensure_private_dir, open_private

        clean = get_redactor().redact_data(details)
        ensure_private_dir(self.path.parent, what="audit directory")  # 0700, ours: nobody can plant a symlink
        with self._lock, FileLock(str(self.path) + ".lock", timeout=30, mode=0o600):
            seq, prev = self._last()
            record: dict[str, Any] = {
                "seq": seq + 1,
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
                "event": event,
                "actor": _actor(),
                "details": clean,
                "prev": prev,
            }
            record["hash"] = record_hash(record)
            fd = open_private(self.path, os.O_WRONLY | os.O_APPEND, what="audit log")  # O_NOFOLLOW, owner checked
            try:
                # A torn last line (crash mid-append) must not glue onto the new record.
                if os.fstat(fd).st_size and not self._ends_with_newline():
                    os.write(fd, b"\n")
                os.write(fd, _canonical(record) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            self._write_head(record)
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception as exc:  # a broken listener must not stop auditing
                logging.getLogger(__name__).warning("audit listener failed: %s", type(exc).__name__)
        return record

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def _write_head(self, record: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".audit-head.", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"seq": record["seq"], "hash": record["hash"]}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.head_path)

    def records(self) -> list[dict[str, Any]]:
        """Every parseable record, in order (for display)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


@dataclass
class AuditVerification:
    """The outcome of :func:`verify_audit_log`."""

    ok: bool
    records: int
    message: str
    bad_seq: int | None = None
    bad_line: int | None = None


def verify_audit_log(path: Path | str) -> AuditVerification:
    """Check the whole chain; report the first broken or missing record."""
    path = Path(path).expanduser()
    if not path.exists():
        return AuditVerification(True, 0, f"{path}: no audit log yet (nothing to verify)")
    prev, expected = GENESIS, 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            seq = record["seq"]
        except (ValueError, KeyError, TypeError):
            return AuditVerification(
                False,
                expected,
                f"{path} line {number}: record {expected} is unreadable (damaged or torn)",
                expected,
                number,
            )
        if seq != expected:
            what = (
                f"record {expected} is missing (found record {seq})"
                if isinstance(seq, int) and seq > expected
                else f"record {expected} has seq {seq!r}"
            )
            return AuditVerification(False, expected, f"{path} line {number}: {what}", expected, number)
        if record.get("prev") != prev:
            return AuditVerification(
                False,
                expected,
                f"{path} line {number}: record {seq} does not chain to record {seq - 1} (prev hash differs)",
                seq,
                number,
            )
        if record.get("hash") != record_hash(record):
            return AuditVerification(
                False, expected, f"{path} line {number}: record {seq} was modified (hash mismatch)", seq, number
            )
        prev, expected = record["hash"], expected + 1
    head_path = path.with_name(path.name + ".head")
    try:
        head = json.loads(head_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        head = None
    if isinstance(head, dict) and isinstance(head.get("seq"), int):
        if head["seq"] >= expected:
            return AuditVerification(
                False,
                expected,
                f"{path}: record {expected} is missing: the log ends after record {expected - 1} "
                f"but records up to {head['seq']} were written (truncated)",
                expected,
                len(lines) + 1,
            )
        if head["seq"] == expected - 1 and head.get("hash") != prev:
            return AuditVerification(
                False,
                expected,
                f"{path}: record {expected - 1} differs from the one last written (replaced)",
                expected - 1,
                len(lines),
            )
    return AuditVerification(True, expected, f"{path}: {expected} records, chain intact")
