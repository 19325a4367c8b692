"""A hash-chained, keyed, append-only audit log (JSON lines).

Each record holds ``seq`` (0, 1, 2, ...), ``ts``, ``event``, ``actor``, ``details``,
``prev`` (the hash of the previous record; 64 zeros for the first), ``hash``
(SHA-256 of the record's canonical JSON without ``hash`` and ``mac``) and ``mac``
(HMAC-SHA256 of ``hash`` under the *audit key*, a 0600 file ``audit.key`` in the
vault's key directory ``security.key_dir``, never beside the log).

* Editing a record breaks its hash; recomputing the hash breaks its MAC (which
  needs the key); removing a record breaks the ``seq``/``prev`` link of the next.
* Two files remember the last record written: a *head* beside the log and an
  *anchor* in the key directory (last ``seq`` and ``hash``, MAC'd), both replaced
  atomically on every append.  Cutting records off the end, or deleting the log
  together with its head, is reported from the anchor.
* Caller-controlled strings (client ids, names) are bounded to
  :data:`MAX_DETAIL_CHARS` and their control and line-separator characters are
  escaped, so no input can break a record or the chain; records are split on
  ``\\n`` only.

Values of secrets are never written: details are passed through the redactor and
must only hold names.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SecurityError
from .redact import get_redactor

__all__ = ["GENESIS", "MAX_DETAIL_CHARS", "AuditLog", "AuditVerification", "escape_text", "verify_audit_log"]

GENESIS = "0" * 64
#: Longest string kept in a record's details (client ids and names come from callers).
MAX_DETAIL_CHARS = 200
_MAX_ITEMS = 100
KEY_FILE = "audit.key"
_BLOCK = 65536


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of ``record`` without its ``hash`` and ``mac`` fields."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k not in ("hash", "mac")})).hexdigest()


def record_mac(key: bytes, digest: str) -> str:
    """The keyed MAC of a record's hash."""
    return hmac.new(key, b"sci_ext-audit\x00" + digest.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def escape_text(text: str) -> str:
    """Control, format and line/paragraph-separator characters as ``\\uXXXX``; bounded length."""
    out = "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") else ch for ch in text
    )
    if len(out) > MAX_DETAIL_CHARS:
        out = out[: MAX_DETAIL_CHARS - 20] + f"...(+{len(out) - MAX_DETAIL_CHARS + 20} chars)"
    return out


def sanitize_details(value: Any, depth: int = 0) -> Any:
    """Details safe to write: strings escaped and bounded, containers bounded, other objects as text."""
    if isinstance(value, str):
        return escape_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth >= 4:
        return escape_text(repr(value))
    if isinstance(value, dict):
        items = list(value.items())[:_MAX_ITEMS]
        return {escape_text(str(k)): sanitize_details(v, depth + 1) for k, v in items}
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
        return [sanitize_details(v, depth + 1) for v in seq[:_MAX_ITEMS]]
    return escape_text(str(value))


def _actor() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return {"user": escape_text(user), "host": escape_text(socket.gethostname()), "pid": os.getpid()}


def _default_key_dir() -> Path:
    from ..config.sections import default_key_dir

    return Path(default_key_dir())


def _read_key(key_dir: Path) -> bytes | None:
    path = key_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecurityError(f"audit key {path} cannot be opened ({exc.strerror}); fix its permissions") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if st.st_mode & 0o077:
            raise SecurityError(
                f"audit key {path} has mode {st.st_mode & 0o777:04o} (group/others can access it); "
                f"refusing to use it. Fix: chmod 600 {path}"
            )
        try:
            key = base64.b64decode(handle.read().strip(), validate=True)
        except ValueError:
            raise SecurityError(f"audit key {path} is damaged (not base64)") from None
    if len(key) != 32:
        raise SecurityError(f"audit key {path} is damaged ({len(key)} bytes, expected 32)")
    return key


def _load_or_create_key(key_dir: Path) -> bytes:
    key = _read_key(key_dir)
    if key is not None:
        return key
    from ..trust import create_private_file, ensure_private_dir

    ensure_private_dir(key_dir, what="audit key directory")
    fresh = os.urandom(32)
    try:
        fd = create_private_file(key_dir / KEY_FILE, what="audit key")
    except FileExistsError:  # another process created it first
        return _read_key(key_dir) or fresh
    try:
        os.write(fd, base64.b64encode(fresh) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return fresh


def anchor_path(log_path: Path, key_dir: Path) -> Path:
    """Where the anchor (last seq and hash, MAC'd) of ``log_path`` lives: in the key directory."""
    digest = hashlib.sha256(os.path.abspath(log_path).encode()).hexdigest()[:16]
    return key_dir / f"audit-{digest}.anchor"


def _anchor_mac(key: bytes, path: Path, seq: int, digest: str) -> str:
    message = f"sci_ext-audit-anchor\x00{os.path.abspath(path)}\x00{seq}\x00{digest}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    from ..trust import atomic_write

    atomic_write(path, json.dumps(data))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _last_record(path: Path) -> dict[str, Any] | None:
    """The last complete, parseable record, reading backwards block by block (no size window)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with handle:
        end = handle.seek(0, os.SEEK_END)
        pos, tail = end, b""
        while pos > 0:
            step = min(_BLOCK, pos)
            pos -= step
            handle.seek(pos)
            tail = handle.read(step) + tail
            lines = tail.split(b"\n")
            # lines[0] may be cut by the block boundary unless we reached the start
            candidates = lines if pos == 0 else lines[1:]
            complete = candidates[:-1] if not tail.endswith(b"\n") else candidates
            for raw in reversed(complete):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                    if isinstance(record, dict) and isinstance(record.get("seq"), int):
                        return record
                except ValueError:
                    continue  # a torn line from a crash: chain onto the last good record
            tail = lines[0] if pos > 0 else b""
    return None


class AuditLog:
    """Append records to one audit file, safely across threads and processes."""

    def __init__(self, path: Path | str, key_dir: Path | str | None = None) -> None:
        self.path = Path(path).expanduser()
        self.key_dir = Path(key_dir).expanduser() if key_dir else _default_key_dir()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._key: bytes | None = None

    @property
    def head_path(self) -> Path:
        """The file beside the log that remembers the last record (to detect truncation)."""
        return self.path.with_name(self.path.name + ".head")

    @property
    def anchor_path(self) -> Path:
        """The MAC'd copy of the last seq and hash, kept in the key directory."""
        return anchor_path(self.path, self.key_dir)

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(record)`` after each append (metrics, alerts)."""
        self._listeners.append(listener)

    def _last(self) -> tuple[int, str]:
        """(seq, hash) of the last complete record."""
        record = _last_record(self.path)
        if record is None:
            return -1, GENESIS
        return int(record["seq"]), str(record.get("hash", GENESIS))

    def append(self, event: str, **details: Any) -> dict[str, Any]:
        """Write one record and return it."""
        from filelock import FileLock

        from ..trust import ensure_private_dir, open_private

        clean = sanitize_details(get_redactor().redact_data(details))
        ensure_private_dir(self.path.parent, what="audit directory")  # 0700, ours: nobody can plant a symlink
        with self._lock, FileLock(str(self.path) + ".lock", timeout=30, mode=0o600):
            if self._key is None:
                self._key = _load_or_create_key(self.key_dir)
            seq, prev = self._last()
            record: dict[str, Any] = {
                "seq": seq + 1,
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
                "event": escape_text(str(event)),
                "actor": _actor(),
                "details": clean,
                "prev": prev,
            }
            record["hash"] = record_hash(record)
            record["mac"] = record_mac(self._key, record["hash"])
            fd = open_private(self.path, os.O_WRONLY | os.O_APPEND, what="audit log")  # O_NOFOLLOW, owner checked
            try:
                # A torn last line (crash mid-append) must not glue onto the new record.
                if os.fstat(fd).st_size and not self._ends_with_newline():
                    os.write(fd, b"\n")
                os.write(fd, _canonical(record) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            _write_json_atomic(self.head_path, {"seq": record["seq"], "hash": record["hash"]})
            _write_json_atomic(
                self.anchor_path,
                {
                    "path": os.path.abspath(self.path),
                    "seq": record["seq"],
                    "hash": record["hash"],
                    "mac": _anchor_mac(self._key, self.path, record["seq"], record["hash"]),
                },
            )
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

    def records(self) -> list[dict[str, Any]]:
        """Every parseable record, in order (for display)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in data.split(b"\n"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out


@dataclass
class AuditVerification:
    """The outcome of :func:`verify_audit_log`."""

    ok: bool
    records: int
    message: str
    bad_seq: int | None = None
    bad_line: int | None = None


def verify_audit_log(path: Path | str, key_dir: Path | str | None = None) -> AuditVerification:
    """Check the whole chain (hashes, MACs, links, head and anchor); report the first problem."""
    path = Path(path).expanduser()
    keys = Path(key_dir).expanduser() if key_dir else _default_key_dir()
    try:
        key = _read_key(keys)
    except SecurityError as exc:
        return AuditVerification(False, 0, str(exc))
    anchor = _read_json(anchor_path(path, keys))
    if anchor is not None:
        good = (
            isinstance(anchor, dict)
            and isinstance(anchor.get("seq"), int)
            and key is not None
            and hmac.compare_digest(
                str(anchor.get("mac", "")), _anchor_mac(key, path, anchor["seq"], str(anchor.get("hash", "")))
            )
        )
        if not good:
            return AuditVerification(
                False, 0, f"{path}: its anchor {anchor_path(path, keys)} was modified or its audit key is missing"
            )
    head = _read_json(path.with_name(path.name + ".head"))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        written = [x["seq"] for x in (anchor, head) if isinstance(x, dict) and isinstance(x.get("seq"), int)]
        if written:
            return AuditVerification(
                False, 0, f"{path}: the audit log was deleted: records 0 to {max(written)} had been written", 0, 1
            )
        return AuditVerification(True, 0, f"{path}: no audit log yet (nothing to verify)")
    prev, expected, legacy = GENESIS, 0, 0
    hashes: dict[int, str] = {}
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
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
        mac = record.get("mac")
        if mac is None:
            if expected > legacy:  # an unkeyed record after keyed ones: written without the key
                return AuditVerification(
                    False, expected, f"{path} line {number}: record {seq} has no MAC (forged or rewritten)", seq, number
                )
            legacy += 1
        elif key is None:
            return AuditVerification(
                False,
                expected,
                f"{path}: the audit key {keys / KEY_FILE} is missing, so the records' MACs cannot be checked",
                seq,
                number,
            )
        elif not hmac.compare_digest(str(mac), record_mac(key, record["hash"])):
            return AuditVerification(
                False,
                expected,
                f"{path} line {number}: record {seq} was modified or rewritten (MAC mismatch)",
                seq,
                number,
            )
        hashes[seq] = record["hash"]
        prev, expected = record["hash"], expected + 1
    for name, mark in (("anchor", anchor), ("head", head)):
        if not isinstance(mark, dict) or not isinstance(mark.get("seq"), int):
            continue
        if mark["seq"] >= expected:
            return AuditVerification(
                False,
                expected,
                f"{path}: record {expected} is missing: the log ends after record {expected - 1} "
                f"but records up to {mark['seq']} were written (truncated; seen in the {name})",
                expected,
                len(lines) + 1,
            )
        if hashes.get(mark["seq"]) != mark.get("hash"):
            return AuditVerification(
                False,
                expected,
                f"{path}: record {mark['seq']} differs from the one last written (replaced; seen in the {name})",
                mark["seq"],
                len(lines),
            )
    if expected > legacy and anchor is None:
        return AuditVerification(
            False, expected, f"{path}: its anchor {anchor_path(path, keys)} is missing (deleted?)", expected, len(lines)
        )
    note = f" ({legacy} unkeyed record(s) written before the keyed chain)" if legacy else ""
    return AuditVerification(True, expected, f"{path}: {expected} records, chain intact{note}")
