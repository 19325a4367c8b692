"""API keys: ``sci_<id>_<secret>`` tokens of which only a salted hash is kept.

The token is shown once, by :meth:`ApiKeyStore.generate`.  The store file
(``apikeys.json`` beside the vault, mode 0600) holds, per key id: name, scopes,
created, expiry, a random salt and HMAC-SHA256(salt, secret).  The secret part has
256 bits of entropy, so a fast keyed hash is enough (a slow KDF would only make
every ``/sci/metrics`` scrape slow) and validation costs microseconds.

Validation is constant-time in the secret: an unknown id is compared against a
dummy hash, and the final comparison uses :func:`hmac.compare_digest`.  The file is
re-read only when its stat changes, under a lock; validations run concurrently.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AuthenticationError, SecurityError

__all__ = ["DEFAULT_SCOPES", "TOKEN_PREFIX", "ApiKeyInfo", "ApiKeyStore"]

TOKEN_PREFIX = "sci"  # noqa: S105  # nosec B105  # a prefix, not a password
DEFAULT_SCOPES = ("metrics:read",)
_TOKEN_RE = re.compile(r"sci_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")  # always fullmatch: no trailing "\n"
_SCOPE_RE = re.compile(r"^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)?$|^\*$")
_DUMMY_SALT = secrets.token_bytes(16)


@dataclass(frozen=True)
class ApiKeyInfo:
    """What is known about a key (never its secret)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created: float
    expires: float | None

    def expired(self, now: float | None = None) -> bool:
        """True once the key's time to live has passed."""
        return self.expires is not None and (now or time.time()) >= self.expires

    def allows(self, scope: str) -> bool:
        """True when the key carries ``scope`` (``*`` grants everything)."""
        return "*" in self.scopes or scope in self.scopes


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("ascii", "replace"), hashlib.sha256).digest()


class ApiKeyStore:
    """The API-key file and its in-memory copy."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._keys: dict[str, dict[str, Any]] = {}
        self._stamp: tuple[int, int, int, int] | None = None

    # ---------------------------------------------------------------- file
    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            with self._lock:
                self._keys, self._stamp = {}, None
            return self._keys
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
        if stamp == self._stamp:
            return self._keys
        with self._lock:
            if stat.S_IMODE(st.st_mode) & 0o077:
                raise SecurityError(
                    f"API key file {self.path} has mode {stat.S_IMODE(st.st_mode):04o}; refusing it. "
                    f"Fix: chmod 600 {self.path}"
                )
            try:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
                keys = doc["keys"]
                if doc.get("format") != "sci_ext-apikeys" or not isinstance(keys, dict):
                    raise ValueError("not an API key file")
            except (ValueError, KeyError, TypeError) as exc:
                raise SecurityError(f"API key file {self.path} is damaged ({exc})") from None
            self._keys, self._stamp = keys, stamp
            return keys

    def _save(self, keys: dict[str, dict[str, Any]]) -> None:
        from ..trust import atomic_write, ensure_private_dir

        ensure_private_dir(self.path.parent, what="API key directory")
        text = json.dumps({"format": "sci_ext-apikeys", "version": 1, "keys": keys}, indent=1, sort_keys=True)
        atomic_write(self.path, text)
        self._stamp = None

    def _modify(self) -> Any:
        from filelock import FileLock

        from ..trust import ensure_private_dir

        ensure_private_dir(self.path.parent, what="API key directory")
        return FileLock(str(self.path) + ".lock", timeout=30, mode=0o600)

    # ---------------------------------------------------------------- verbs
    def generate(
        self, name: str, scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES, ttl_seconds: float | None = None
    ) -> tuple[str, ApiKeyInfo]:
        """Create a key; return the token (shown once) and its info."""
        if not name or not isinstance(name, str) or len(name) > 200:
            raise SecurityError(f"API key name must be a non-empty string of at most 200 characters, got {name!r}")
        scopes = tuple(scopes)
        if not scopes:
            raise SecurityError("an API key needs at least one scope (e.g. metrics:read)")
        for scope in scopes:
            if not _SCOPE_RE.match(scope):
                raise SecurityError(f"invalid scope {scope!r}: expected e.g. 'metrics:read' or '*'")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise SecurityError(f"ttl_seconds must be positive, got {ttl_seconds}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        now = time.time()
        record = {
            "name": name,
            "scopes": list(scopes),
            "created": now,
            "expires": now + ttl_seconds if ttl_seconds else None,
            "salt": salt.hex(),
            "hash": _digest(salt, secret).hex(),
        }
        with self._lock, self._modify():
            keys = dict(self._load())
            keys[key_id] = record
            self._save(keys)
        return f"{TOKEN_PREFIX}_{key_id}_{secret}", self._info(key_id, record)

    @staticmethod
    def _info(key_id: str, record: dict[str, Any]) -> ApiKeyInfo:
        return ApiKeyInfo(
            key_id, str(record["name"]), tuple(record["scopes"]), float(record["created"]), record.get("expires")
        )

    def check(self, token: str) -> ApiKeyInfo:
        """The key ``token`` belongs to; :class:`AuthenticationError` if none (constant time)."""
        match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
        key_id, secret = (match.group(1), match.group(2)) if match else ("", "x" * 43)
        record = self._load().get(key_id)
        if record is not None:
            salt, expected = bytes.fromhex(record["salt"]), bytes.fromhex(record["hash"])
        else:
            salt, expected = _DUMMY_SALT, b"\0" * 32
        good = hmac.compare_digest(_digest(salt, secret), expected)
        if not (good and match and record is not None):
            raise AuthenticationError("invalid API key")
        return self._info(key_id, record)

    def revoke(self, key_id: str) -> ApiKeyInfo:
        """Delete a key by id (or by its full token); KeyError if unknown."""
        match = _TOKEN_RE.fullmatch(key_id)
        key_id = match.group(1) if match else key_id
        with self._lock, self._modify():
            keys = dict(self._load())
            record = keys.pop(key_id, None)
            if record is None:
                raise KeyError(f"no API key with id {key_id!r}")
            self._save(keys)
        return self._info(key_id, record)

    def list(self) -> list[ApiKeyInfo]:
        """Every key, oldest first (never a secret)."""
        keys = self._load()
        return sorted((self._info(k, r) for k, r in keys.items()), key=lambda i: (i.created, i.key_id))

    def get(self, key_id: str) -> ApiKeyInfo:
        """Info of one key by id; KeyError if unknown."""
        record = self._load().get(key_id)
        if record is None:
            raise KeyError(f"no API key with id {key_id!r}")
        return self._info(key_id, record)
