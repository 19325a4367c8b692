"""The encrypted secret vault: one JSON file, AES-256-GCM per secret.

File layout (``security.vault_path``, mode 0600 in a 0700 directory)::

    {"format": "sci_ext-vault", "version": 1, "vault_id": "<32 hex>",
     "key": {"source": "passphrase", "kdf": "scrypt", "salt": ..., "n": ..., "r": ..., "p": ...},
     "check": {"nonce": ..., "ciphertext": ..., "tag": ...},
     "secrets": {"NAME": {"nonce": ..., "ciphertext": ..., "tag": ..., "created": ..., "updated": ...}}}

* Every encryption uses a fresh 96-bit nonce.  The associated data of a secret is
  the vault id and the secret's name, so a ciphertext moved to another name or
  another vault fails to decrypt.
* ``check`` encrypts a constant with the whole header (format, version, vault id,
  key spec) as associated data: a wrong key or an edited header is detected at
  unlock, before anything is written.
* Writes: read-modify-write under a file lock, temp file + fsync + rename + fsync of
  the directory.  Two processes setting different secrets both keep theirs; a
  process killed mid-write leaves the old or the new file, never a mix.
* The master key is derived once and kept in memory until :meth:`Vault.lock`.
* A *manifest* (``"manifest"``, sealed with the header as associated data) holds
  the generation counter (``"generation"``, +1 on every write) and, per secret,
  its ``created``/``updated`` times and a digest of its sealed entry.  Removing,
  adding, pasting back an older entry or editing a time no longer matches it.
  The last generation seen is kept outside the vault file, in a 0600 state file in
  ``key_dir`` (``vault-<path digest>.state``); an older file (the whole vault
  rolled back) is refused.
* A rotation records the key material it creates and retires in the state file
  first; the next unlock removes whatever a crash left behind (new keys that never
  got used, the old key of a committed rotation) and the vault's stale temp copies.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AuthenticationError, SecurityError
from .masterkey import (
    Prompt,
    check_private_file,
    discard_master_key,
    keyring_available,
    new_master_key,
    open_master_key,
)

__all__ = ["FORMAT", "SecretInfo", "Vault", "validate_name"]

_MANIFEST_LABEL = b"sci_ext-vault-manifest\x00"

FORMAT = "sci_ext-vault"
VERSION = 1
_CHECK_PLAINTEXT = b"sci_ext vault key check v1"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_HEX_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_VALUE_BYTES = 64 * 1024

# Indirection so fault-injection tests can kill the process at the rename.
_replace = os.replace

AuditHook = Callable[..., None]


def validate_name(name: str) -> str:
    """Check a secret name (an environment-variable-like identifier)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SecurityError(
            f"invalid secret name {name!r}: use letters, digits, '_', '.', '-' (start with a letter or '_'; max 128)"
        )
    return name


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, where: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise SecurityError(f"{where} is damaged (not base64)") from None


@dataclass(frozen=True)
class SecretInfo:
    """What :meth:`Vault.list` shows about a secret: never its value."""

    name: str
    created: float
    updated: float
    last_used: float | None


class Vault:
    """An AES-256-GCM vault file; see the module docstring."""

    def __init__(
        self,
        path: Path | str,
        *,
        kdf: tuple[int, int, int] = (2**17, 8, 1),
        key_source: str = "auto",
        key_dir: Path | str | None = None,
        prompt: Prompt | None = None,
        audit: AuditHook | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.kdf = kdf
        self.key_source = key_source
        self.key_dir = Path(key_dir).expanduser() if key_dir else self.path.parent.parent / "sci_ext-keys"
        self.prompt = prompt
        self._audit = audit or (lambda *a, **k: None)
        self._lock = threading.RLock()
        self._key: bytes | None = None
        self._vault_id: str | None = None
        self._doc: dict[str, Any] | None = None
        self._stamp: tuple[int, int, int, int] | None = None
        self._usage: dict[str, float] = {}
        self._usage_flushed: dict[str, float] = {}
        self._checked_stamp: tuple[int, int, int, int] | None = None
        self._listing: dict[str, dict[str, Any]] | None = None
        self._checked_names: set[str] = set()

    # ---------------------------------------------------------------- files
    @property
    def usage_path(self) -> Path:
        """Side file with the last-used time of each secret (names and times only)."""
        return self.path.with_name(self.path.name + ".usage")

    def exists(self) -> bool:
        """True when the vault file exists."""
        return self.path.exists()

    def _check_dir(self) -> None:
        from ..trust import check_trusted, ensure_private_dir

        directory = self.path.parent
        if not directory.exists():
            ensure_private_dir(directory, what="vault directory")  # every missing parent 0700 too
            return
        check_trusted(directory, what="vault directory")
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            raise SecurityError(
                f"vault directory {directory} has mode {mode:04o} (group/others can access it); "
                f"refusing to use it. Fix: chmod 700 {directory}"
            )

    def _file_lock(self) -> Any:
        from filelock import FileLock

        self._check_dir()
        return FileLock(str(self.path) + ".lock", timeout=30, mode=0o600)

    def _read(self) -> dict[str, Any] | None:
        """The parsed vault file (cached while its stat is unchanged), or None."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._doc, self._stamp = None, None
            return None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
        if self._doc is not None and stamp == self._stamp:
            return self._doc
        self._check_dir()
        check_private_file(self.path, "vault file")
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SecurityError(
                f"vault file {self.path} is damaged (not valid JSON: {exc}); nothing was changed"
            ) from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise SecurityError(
                f"{self.path} is not a sci_ext vault (format {doc.get('format') if isinstance(doc, dict) else None!r})"
            )
        if doc.get("version") != VERSION:
            raise SecurityError(
                f"{self.path}: vault version {doc.get('version')!r} is not supported (expected {VERSION})"
            )
        if (
            not isinstance(doc.get("secrets"), dict)
            or not isinstance(doc.get("key"), dict)
            or not isinstance(doc.get("vault_id"), str)
        ):
            raise SecurityError(f"vault file {self.path} is damaged (missing header fields)")
        self._doc, self._stamp = doc, stamp
        return doc

    def _write(self, doc: dict[str, Any]) -> None:
        from ..trust import atomic_write

        text = json.dumps(doc, indent=1, sort_keys=True)
        atomic_write(self.path, text, sync_dir=True, replace=_replace)
        self._doc, self._stamp = None, None

    # ------------------------------------------------------------ state file
    @property
    def state_path(self) -> Path:
        """Outside the vault file: the last generation seen and key material of unfinished rotations."""
        digest = hashlib.sha256(os.path.abspath(self.path).encode()).hexdigest()[:16]
        return self.key_dir / f"vault-{digest}.state"

    def _load_state(self) -> dict[str, Any]:
        try:
            fd = os.open(self.state_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecurityError(
                f"vault state file {self.state_path} cannot be opened ({exc.strerror}); fix its permissions"
            ) from None
        with os.fdopen(fd, "r", encoding="utf-8") as handle:
            if os.fstat(handle.fileno()).st_mode & 0o022:
                raise SecurityError(
                    f"vault state file {self.state_path} is writable by group/others; refusing it. "
                    f"Fix: chmod 600 {self.state_path}"
                )
            try:
                state = json.load(handle)
            except ValueError:
                raise SecurityError(
                    f"vault state file {self.state_path} is damaged (not JSON); "
                    "delete it to accept the vault file as it is now"
                ) from None
        return state if isinstance(state, dict) else {}

    def _save_state(self, state: dict[str, Any]) -> None:
        from ..trust import atomic_write, ensure_private_dir

        ensure_private_dir(self.key_dir, what="key directory")
        atomic_write(self.state_path, json.dumps(state, sort_keys=True))

    def _remember_generation(self, doc: dict[str, Any]) -> None:
        generation = doc.get("generation")
        if not isinstance(generation, int):
            return
        state = self._load_state()
        if generation > int(state.get("generation", 0) or 0) or state.get("vault_id") != doc["vault_id"]:
            state.update(generation=max(generation, int(state.get("generation", 0) or 0)), vault_id=doc["vault_id"])
            self._save_state(state)

    def _cleanup(self, doc: dict[str, Any]) -> None:
        """Remove what an interrupted set or rotation left: temp copies, unused or retired keys.

        Called under the file lock (no writer is active), at the first unlock.
        """
        for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            tmp.unlink(missing_ok=True)
        for tmp in self.key_dir.glob(".vault-state.*.tmp") if self.key_dir.is_dir() else ():
            tmp.unlink(missing_ok=True)
        state = self._load_state()
        pending, retired = state.get("pending") or [], state.get("retired") or []
        if not pending and not retired:
            return
        current = doc.get("key")
        for vault_id in pending:
            if not isinstance(vault_id, str) or vault_id == doc["vault_id"] or not _HEX_ID.match(vault_id):
                continue
            discard_master_key({"source": "keyfile", "path": str(self.key_dir.resolve() / f"vault-{vault_id}.key")})
            if keyring_available():
                discard_master_key({"source": "keyring", "username": vault_id})
        for spec in retired:
            if isinstance(spec, dict) and spec != current and spec.get("source") in ("keyfile", "keyring"):
                discard_master_key(spec)
        state["pending"], state["retired"] = [], []
        self._save_state(state)

    # ------------------------------------------------------------- manifest
    @staticmethod
    def _entry_digest(entry: Any) -> str:
        if not isinstance(entry, dict):
            return ""
        raw = "\x00".join(str(entry.get(k)) for k in ("nonce", "ciphertext", "tag"))
        return hashlib.sha256(raw.encode()).hexdigest()

    def _seal_manifest(self, doc: dict[str, Any], key: bytes, generation: int) -> None:
        """Bump the generation and authenticate the list of names, their times and entries."""
        doc["generation"] = generation
        listing = {
            name: {
                "created": entry.get("created"),
                "updated": entry.get("updated"),
                "digest": self._entry_digest(entry),
            }
            for name, entry in doc["secrets"].items()
        }
        body = json.dumps({"generation": generation, "secrets": listing}, sort_keys=True).encode()
        doc["manifest"] = self._seal(key, body, _MANIFEST_LABEL + self._header_aad(doc))

    def _check(self, doc: dict[str, Any], key: bytes, name: str | None = None) -> dict[str, Any]:
        """Check the generation, the manifest and the list of names, then the entry ``name`` (None: all).

        Returns the document to use (re-read once when it looked older than the last generation seen).
        """
        listing = self._listing if self._checked_stamp is not None and self._checked_stamp == self._stamp else None
        if listing is None or self._doc is not doc:
            doc, listing = self._check_manifest(doc, key)
            self._checked_names = set()
        if listing is None:
            return doc  # a vault written before manifests: one is added at the next write
        if name is not None and name in self._checked_names:
            return doc  # this entry of this very file was checked already (get stays cheap)
        entries = doc["secrets"] if name is None else {name: doc["secrets"][name]} if name in doc["secrets"] else {}
        for entry_name, entry in entries.items():
            expected = listing.get(entry_name) or {}
            if (
                not isinstance(entry, dict)
                or expected.get("digest") != self._entry_digest(entry)
                or expected.get("created") != entry.get("created")
                or expected.get("updated") != entry.get("updated")
            ):
                raise SecurityError(
                    f"{self.path}: secret {entry_name!r} (its entry or its times) does not match the authenticated "
                    "manifest: an older entry was pasted back or the file was edited; nothing was changed"
                )
        self._checked_names.update(entries)
        return doc

    def _check_manifest(
        self, doc: dict[str, Any], key: bytes
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]] | None]:
        state = self._load_state()
        seen = int(state.get("generation", 0) or 0)
        if (isinstance(doc.get("generation"), int) and doc["generation"] < seen) or ("generation" not in doc and seen):
            # a writer renames the vault BEFORE it records the generation: read the file again
            self._doc = None
            fresh = self._read()
            if fresh is not None:
                doc = fresh
                key = self._unlock_doc(doc)
        generation = doc.get("generation")
        if "manifest" not in doc:
            if seen:
                raise SecurityError(
                    f"vault file {self.path} has no manifest but generation {seen} was seen before: it was "
                    f"replaced by an older or edited copy; nothing was changed. If you restored it on purpose, "
                    f"delete {self.state_path}"
                )
            self._checked_stamp, self._listing = self._stamp, None
            return doc, None
        if not isinstance(generation, int) or generation < seen:
            raise SecurityError(
                f"vault file {self.path} is generation {generation!r}, older than generation {seen} seen last: "
                f"it was rolled back to an older copy; nothing was changed. If you restored it on purpose, "
                f"delete {self.state_path}"
            )
        body = self._open(key, doc.get("manifest"), _MANIFEST_LABEL + self._header_aad(doc), "vault manifest")
        try:
            manifest = json.loads(body)
            listing = manifest["secrets"]
            if not isinstance(listing, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise SecurityError(f"{self.path}: the vault manifest is damaged; nothing was changed") from None
        if manifest.get("generation") != generation:
            raise SecurityError(
                f"{self.path}: the generation {generation} does not match the authenticated one "
                f"({manifest.get('generation')}): the file was edited; nothing was changed"
            )
        names = set(doc["secrets"])
        if names != set(listing):
            gone = sorted(set(listing) - names)
            extra = sorted(names - set(listing))
            what = f"removed: {', '.join(gone)}" if gone else f"added: {', '.join(extra)}"
            raise SecurityError(
                f"{self.path}: the list of secrets does not match the authenticated manifest ({what}); "
                "the file was edited; nothing was changed"
            )
        if generation > seen or state.get("vault_id") != doc["vault_id"]:
            self._remember_generation(doc)
        self._checked_stamp, self._listing = self._stamp, listing
        return doc, listing

    # ----------------------------------------------------------------- crypto
    @staticmethod
    def _header_aad(doc: dict[str, Any]) -> bytes:
        header = {k: doc.get(k) for k in ("format", "version", "vault_id", "key")}
        return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def _entry_aad(vault_id: str, name: str) -> bytes:
        return f"sci_ext-vault\x00{vault_id}\x00{name}".encode()

    @staticmethod
    def _seal(key: bytes, plaintext: bytes, aad: bytes) -> dict[str, Any]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext, aad)
        return {"nonce": _b64(nonce), "ciphertext": _b64(sealed[:-16]), "tag": _b64(sealed[-16:])}

    def _open(self, key: bytes, entry: Any, aad: bytes, what: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not isinstance(entry, dict):
            raise SecurityError(f"{self.path}: {what} is damaged")
        nonce = _unb64(entry.get("nonce"), f"{self.path}: {what} (nonce)")
        body = _unb64(entry.get("ciphertext"), f"{self.path}: {what} (ciphertext)")
        tag = _unb64(entry.get("tag"), f"{self.path}: {what} (tag)")
        if len(nonce) != 12 or len(tag) != 16:
            raise SecurityError(f"{self.path}: {what} is damaged (nonce or tag has the wrong length)")
        try:
            return AESGCM(key).decrypt(nonce, body + tag, aad)
        except InvalidTag:
            raise SecurityError(
                f"{self.path}: {what} failed authentication: the file was modified or damaged; nothing was changed"
            ) from None

    # ------------------------------------------------------------- lock state
    @property
    def unlocked(self) -> bool:
        """True while the master key is held in memory."""
        return self._key is not None

    def lock(self) -> None:
        """Forget the master key (the next access unlocks again)."""
        with self._lock:
            was = self._key is not None
            self._key, self._vault_id = None, None
        if was:
            self._audit("vault.lock", path=str(self.path))

    def unlock(self, passphrase: str | None = None) -> None:
        """Derive or fetch the master key and check it against the header."""
        with self._lock:
            doc = self._read()
            if doc is None:
                with self._file_lock():
                    doc = self._read() or self._create(passphrase)
            self._check(doc, self._unlock_doc(doc, passphrase))

    def _create(self, passphrase: str | None) -> dict[str, Any]:
        vault_id = secrets.token_hex(16)
        key, spec = new_master_key(
            vault_id,
            self.path.parent,
            source=self.key_source,
            kdf=self.kdf,
            key_dir=self.key_dir,
            prompt=self.prompt,
            passphrase=passphrase,
        )
        doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "vault_id": vault_id, "key": spec, "secrets": {}}
        doc["check"] = self._seal(key, _CHECK_PLAINTEXT, self._header_aad(doc))
        seen = int(self._load_state().get("generation", 0) or 0)
        self._seal_manifest(doc, key, seen + 1)
        self._write(doc)
        self._remember_generation(doc)
        self._audit("vault.create", path=str(self.path), key_source=spec["source"])
        self._key, self._vault_id = key, vault_id
        return self._read() or doc

    def _unlock_doc(self, doc: dict[str, Any], passphrase: str | None = None, *, locked: bool = False) -> bytes:
        if self._key is not None and self._vault_id == doc["vault_id"]:
            return self._key
        fresh_unlock = self._key is None
        key = open_master_key(doc["key"], self.path, prompt=self.prompt, passphrase=passphrase)
        try:
            self._open(key, doc.get("check"), self._header_aad(doc), "vault header")
        except SecurityError:
            self._audit("vault.unlock_failed", path=str(self.path), key_source=doc["key"].get("source"))
            what = "wrong passphrase" if doc["key"].get("source") == "passphrase" else "wrong master key"
            raise AuthenticationError(
                f"cannot unlock {self.path}: {what}, or the vault header was modified; nothing was changed"
            ) from None
        self._key, self._vault_id = key, doc["vault_id"]
        self._audit("vault.unlock", path=str(self.path), key_source=doc["key"].get("source"))
        if fresh_unlock:
            if locked:
                self._cleanup(doc)
            else:
                with self._file_lock():
                    self._cleanup(doc)
        return key

    @contextlib.contextmanager
    def _modify(self) -> Iterator[tuple[dict[str, Any], bytes]]:
        """Read the latest file under the lock, let the caller change it, write it."""
        with self._lock, self._file_lock():
            doc = self._read()
            if doc is None:
                doc = self._create(None)
            key = self._unlock_doc(doc, locked=True)
            doc = self._check(doc, key)
            key = self._unlock_doc(doc, locked=True)
            generation = int(doc.get("generation", 0) or 0)
            doc = json.loads(json.dumps(doc))  # a private copy: the cache stays intact on failure
            yield doc, key
            self._seal_manifest(doc, key, generation + 1)
            self._write(doc)
            self._remember_generation(doc)

    # ------------------------------------------------------------------ verbs
    def set(self, name: str, value: str) -> None:
        """Store (or replace) secret ``name``."""
        validate_name(name)
        if not isinstance(value, str) or not value:
            raise SecurityError(f"the value of {name} must be a non-empty string")
        data = value.encode("utf-8")
        if len(data) > MAX_VALUE_BYTES:
            raise SecurityError(f"the value of {name} is larger than {MAX_VALUE_BYTES} bytes")
        with self._modify() as (doc, key):
            now = time.time()
            old = doc["secrets"].get(name)
            entry = self._seal(key, data, self._entry_aad(doc["vault_id"], name))
            entry["created"] = old.get("created", now) if isinstance(old, dict) else now
            entry["updated"] = now
            doc["secrets"][name] = entry
        self._audit("secret.set", name=name, replaced=old is not None)

    def get(self, name: str) -> str:
        """The value of secret ``name`` (unlocks on first use)."""
        with self._lock:
            doc = self._read()
            if doc is None or name not in doc["secrets"]:
                raise KeyError(f"no secret named {name!r} in {self.path}")
            doc = self._check(doc, self._unlock_doc(doc), name)
            if name not in doc["secrets"]:
                raise KeyError(f"no secret named {name!r} in {self.path}")
            key = self._unlock_doc(doc)
            value = self._open(key, doc["secrets"][name], self._entry_aad(doc["vault_id"], name), f"secret {name!r}")
            self._touch(name)
        return value.decode("utf-8")

    def delete(self, name: str) -> None:
        """Remove secret ``name`` (KeyError if it does not exist)."""
        with self._modify() as (doc, _key):
            if name not in doc["secrets"]:
                raise KeyError(f"no secret named {name!r} in {self.path}")
            del doc["secrets"][name]
        self._audit("secret.delete", name=name)

    def names(self) -> list[str]:
        """Sorted secret names (no unlock needed)."""
        doc = self._read()
        return sorted(doc["secrets"]) if doc else []

    def list(self) -> list[SecretInfo]:
        """Name, created, updated and last-used time of each secret (never values)."""
        doc = self._read()
        if not doc:
            return []
        usage = self._load_usage()
        out = []
        for name in sorted(doc["secrets"]):
            entry = doc["secrets"][name]
            out.append(
                SecretInfo(name, float(entry.get("created", 0)), float(entry.get("updated", 0)), usage.get(name))
            )
        return out

    def verify(self) -> int:
        """Decrypt every entry (nothing is returned); the number of secrets checked."""
        with self._lock:
            doc = self._read()
            if doc is None:
                return 0
            doc = self._check(doc, self._unlock_doc(doc))
            key = self._unlock_doc(doc)
            for name, entry in doc["secrets"].items():
                self._open(key, entry, self._entry_aad(doc["vault_id"], name), f"secret {name!r}")
            return len(doc["secrets"])

    def rotate(self, passphrase: str | None = None) -> None:
        """New vault id and master key; every secret re-encrypted.

        The new file replaces the old one by an atomic rename only once it is
        durable; the old key material is removed after that.  Interrupted at any
        point, the old vault still opens with the old key.
        """
        with self._lock, self._file_lock():
            doc = self._read()
            if doc is None:
                raise SecurityError(f"no vault at {self.path} to rotate")
            doc = self._check(doc, self._unlock_doc(doc, locked=True))
            old_key = self._unlock_doc(doc, locked=True)
            plain = {
                name: self._open(old_key, entry, self._entry_aad(doc["vault_id"], name), f"secret {name!r}")
                for name, entry in doc["secrets"].items()
            }
            source = self.key_source
            if source == "auto" and doc["key"].get("source") != "keyfile":
                # keep the vault's source; a key-file vault moves up to a keyring or passphrase when one exists now
                source = doc["key"].get("source", "auto")
            vault_id = secrets.token_hex(16)
            # recorded BEFORE the new key exists: a crash anywhere below is cleaned up at the next unlock
            state = self._load_state()
            state["pending"] = [*(state.get("pending") or []), vault_id]
            state["retired"] = [*(state.get("retired") or []), doc["key"]]
            self._save_state(state)
            key, spec = new_master_key(
                vault_id,
                self.path.parent,
                source=source,
                kdf=self.kdf,
                key_dir=self.key_dir,
                prompt=self.prompt,
                passphrase=passphrase,
            )
            new: dict[str, Any] = {
                "format": FORMAT,
                "version": VERSION,
                "vault_id": vault_id,
                "key": spec,
                "secrets": {},
            }
            new["check"] = self._seal(key, _CHECK_PLAINTEXT, self._header_aad(new))
            for name, data in plain.items():
                entry = self._seal(key, data, self._entry_aad(vault_id, name))
                old_entry = doc["secrets"][name]
                entry["created"], entry["updated"] = (
                    old_entry.get("created", time.time()),
                    old_entry.get("updated", time.time()),
                )
                new["secrets"][name] = entry
            self._seal_manifest(new, key, int(doc.get("generation", 0) or 0) + 1)
            self._write(new)
            self._key, self._vault_id = key, vault_id
            discard_master_key(doc["key"])
            state = self._load_state()
            state.update(generation=new["generation"], vault_id=vault_id, pending=[], retired=[])
            self._save_state(state)
        self._audit("vault.rotate", path=str(self.path), secrets=len(plain), key_source=spec["source"])

    # ------------------------------------------------------------ blobs
    def seal_blob(self, data: bytes, label: str) -> bytes:
        """Encrypt ``data`` with the vault key (for encrypted backups); JSON bytes."""
        with self._lock:
            doc = self._read()
            if doc is None:
                with self._file_lock():
                    doc = self._read() or self._create(None)
            key = self._unlock_doc(doc)
            aad = f"sci_ext-blob\x00{doc['vault_id']}\x00{label}".encode()
            box = {
                "format": "sci_ext-sealed",
                "vault_id": doc["vault_id"],
                "label": label,
                **self._seal(key, data, aad),
            }
        return json.dumps(box).encode()

    def open_blob(self, blob: bytes) -> bytes:
        """Decrypt what :meth:`seal_blob` produced (same vault, not rotated since)."""
        box = json.loads(blob)
        with self._lock:
            doc = self._read()
            if doc is None or box.get("vault_id") != doc["vault_id"]:
                raise SecurityError("this backup was sealed by another vault (or before a rotation)")
            key = self._unlock_doc(doc)
            aad = f"sci_ext-blob\x00{doc['vault_id']}\x00{box.get('label')}".encode()
            return self._open(key, box, aad, "sealed backup")

    # ------------------------------------------------------------ usage times
    def _load_usage(self) -> dict[str, float]:
        try:
            data = json.loads(self.usage_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        merged = {k: float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}
        for name, ts in self._usage.items():
            merged[name] = max(ts, merged.get(name, 0.0))
        return merged

    def _touch(self, name: str, throttle: float = 60.0) -> None:
        # Recording every read would cost a file write per get; once a minute is enough for "last used".
        now = time.time()
        self._usage[name] = now
        if now - self._usage_flushed.get(name, 0.0) < throttle:
            return
        self._usage_flushed[name] = now
        try:
            usage = self._load_usage()
            from ..trust import atomic_write

            atomic_write(self.usage_path, json.dumps(usage))
        except OSError:
            pass  # last-used times are informative only
