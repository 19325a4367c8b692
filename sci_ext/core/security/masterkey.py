"""Where the vault's 256-bit master key comes from.

First found (docs/secrets.md, "Master key"): the OS keyring when a real backend exists; a
passphrase (``SCI_EXT_VAULT_PASSPHRASE`` or a prompt) stretched by scrypt; a
generated key file (0600, created with ``O_EXCL``, outside the vault's directory),
the weakest option, with a warning.  The vault header records which source a vault
uses (the *key spec*), so it always reopens the same way.
"""

from __future__ import annotations

import base64
import getpass
import hmac
import logging
import os
import secrets
import stat
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import AuthenticationError, SecurityError, VaultLockedError

__all__ = [
    "KEYRING_SERVICE",
    "MIN_KDF_N",
    "PASSPHRASE_ENV",
    "Prompt",
    "check_private_file",
    "default_prompt",
    "derive_scrypt",
    "discard_master_key",
    "keyring_available",
    "new_master_key",
    "open_master_key",
]

PASSPHRASE_ENV = "SCI_EXT_VAULT_PASSPHRASE"  # noqa: S105  # nosec B105  # the variable's name
KEYRING_SERVICE = "sci_ext-vault"
MIN_KDF_N = 2**14
#: Upper bounds, as ``security.kdf_*`` allows them; a header asking for more is tampered with.
MAX_KDF_N = 2**22
MAX_KDF_R = 64
MAX_KDF_P = 16
#: scrypt needs about 128 * n * r bytes: 4 GiB is the largest config at the default r (n=2**22, r=8).
MAX_KDF_MEMORY = 4 * 2**30
KEY_BYTES = 32

#: ``prompt(text) -> value or None`` (None: no way to ask, e.g. no terminal).
Prompt = Callable[[str], "str | None"]

log = logging.getLogger(__name__)


def _stdlib_getpass(ask: Any) -> bool:
    """True for the standard library's own getpass (a terminal's), whatever replaced it since import.

    ipykernel swaps ``getpass.getpass`` for its kernel's method while each cell runs, so
    what ``getpass.getpass`` was when this module was imported says nothing: imported
    during a cell (the first cell, ``%load_ext sci_ext`` then ``%sci_secret export``) it
    was already the kernel's, and a comparison with it hid the kernel from the prompt.
    """
    return any(ask is getattr(getpass, name, None) for name in ("unix_getpass", "win_getpass", "fallback_getpass"))


def default_prompt(text: str) -> str | None:
    """Ask with getpass when someone can answer: a kernel frontend or a terminal."""
    ask = getpass.getpass
    in_kernel = not _stdlib_getpass(ask)  # ipykernel's getpass while a cell runs
    if not in_kernel and not (sys.stdin is not None and sys.stdin.isatty()):
        return None
    try:
        return ask(text)
    except Exception as exc:  # StdinNotImplementedError: the frontend cannot prompt
        if type(exc).__name__ == "StdinNotImplementedError":
            return None
        raise


def keyring_available() -> bool:
    """True when the ``keyring`` package has a real backend (not the fail/null ones)."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except ImportError:
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:
        return False
    if isinstance(backend, fail.Keyring) or type(backend).__module__.endswith("null"):
        return False
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return False
    priority = getattr(backend, "priority", 1)
    try:
        return float(priority) > 0
    except (TypeError, ValueError):
        return True


def derive_scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """A 32-byte key from ``passphrase`` (scrypt, via ``cryptography``)."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    if n < MIN_KDF_N or n & (n - 1) or n > MAX_KDF_N:
        raise SecurityError(f"scrypt cost n={n} must be a power of two from 2**14 to 2**22")
    if not 1 <= r <= MAX_KDF_R or not 1 <= p <= MAX_KDF_P or 128 * n * r > MAX_KDF_MEMORY:
        raise SecurityError(
            f"scrypt n={n}, r={r}, p={p} is out of bounds (r 1..{MAX_KDF_R}, p 1..{MAX_KDF_P}, "
            f"128*n*r at most {MAX_KDF_MEMORY >> 30} GiB)"
        )
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def check_private_file(path: Path, what: str) -> None:
    """Refuse a file readable or writable by group or others, saying how to fix it."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecurityError(
            f"{what} {path} has mode {mode:04o} (group/others can access it); refusing to use it. Fix: chmod 600 {path}"
        )


def _passphrase(prompt: Prompt | None, text: str, confirm: bool = False) -> str | None:
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    if prompt is None:
        return None
    value = prompt(text)
    if value is None:
        return None
    if not value:
        raise AuthenticationError("empty passphrase")
    if confirm:
        again = prompt("Repeat the passphrase: ")
        if again is None or not hmac.compare_digest(again.encode(), value.encode()):
            raise AuthenticationError("the two passphrases differ; nothing was changed")
    return value


def _key_file_path(key_dir: Path, vault_id: str) -> Path:
    return key_dir / f"vault-{vault_id}.key"


def new_master_key(
    vault_id: str,
    vault_dir: Path,
    *,
    source: str,
    kdf: tuple[int, int, int],
    key_dir: Path,
    prompt: Prompt | None,
    passphrase: str | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Create the master key of a new vault (or of a rotation); return (key, key spec).

    ``source`` is ``auto``, ``keyring``, ``passphrase`` or ``keyfile``.
    """
    if source in ("auto", "keyring") and passphrase is None and keyring_available():
        import keyring

        key = secrets.token_bytes(KEY_BYTES)
        keyring.set_password(KEYRING_SERVICE, vault_id, base64.b64encode(key).decode())
        return key, {"source": "keyring", "service": KEYRING_SERVICE, "username": vault_id}
    if source == "keyring":
        raise VaultLockedError("security.key_source = 'keyring' but no OS keyring backend is available")
    if source in ("auto", "passphrase"):
        phrase = passphrase or _passphrase(prompt, "New vault passphrase: ", confirm=True)
        if phrase is not None:
            n, r, p = kdf
            salt = secrets.token_bytes(16)
            key = derive_scrypt(phrase, salt, n, r, p)
            spec = {
                "source": "passphrase",
                "kdf": "scrypt",
                "salt": base64.b64encode(salt).decode(),
                "n": n,
                "r": r,
                "p": p,
            }
            return key, spec
        if source == "passphrase":
            raise VaultLockedError(f"no vault passphrase: set {PASSPHRASE_ENV} or run interactively")
    return _new_key_file(vault_id, vault_dir, key_dir)


def _new_key_file(vault_id: str, vault_dir: Path, key_dir: Path) -> tuple[bytes, dict[str, Any]]:
    key_dir = key_dir.expanduser().resolve()
    if key_dir == vault_dir.resolve() or vault_dir.resolve() in key_dir.parents:
        raise SecurityError(
            f"security.key_dir {key_dir} is inside the vault's directory {vault_dir}; "
            "a key beside the data it protects protects nothing. Choose another directory."
        )
    from ..trust import create_private_file, ensure_private_dir

    ensure_private_dir(key_dir, what="security.key_dir")
    path = _key_file_path(key_dir, vault_id)
    key = secrets.token_bytes(KEY_BYTES)
    fd = create_private_file(path)  # O_EXCL | O_NOFOLLOW, 0600
    try:
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    message = (
        f"sci_ext: the vault key is stored in the file {path} (no OS keyring and no passphrase). "
        f"This is the weakest option: anyone who can read that file can read your secrets. "
        f"Set {PASSPHRASE_ENV} or install a keyring backend, then run `jupyter sci secret rotate`."
    )
    warnings.warn(message, UserWarning, stacklevel=3)
    log.warning(message)
    return key, {"source": "keyfile", "path": str(path)}


def open_master_key(
    spec: dict[str, Any], vault_path: Path, *, prompt: Prompt | None, passphrase: str | None = None
) -> bytes:
    """The master key described by a vault header's key ``spec``."""
    source = spec.get("source")
    if source == "passphrase":
        try:
            salt = base64.b64decode(spec["salt"], validate=True)
            n, r, p = int(spec["n"]), int(spec["r"]), int(spec["p"])
        except (KeyError, ValueError, TypeError):
            raise SecurityError(f"{vault_path}: the vault header's key parameters are damaged") from None
        if (
            n < MIN_KDF_N
            or n & (n - 1)
            or n > MAX_KDF_N
            or not 1 <= r <= MAX_KDF_R
            or not 1 <= p <= MAX_KDF_P
            or 128 * n * r > MAX_KDF_MEMORY
        ):
            raise SecurityError(
                f"{vault_path}: the vault header asks for scrypt n={n}, r={r}, p={p}: damaged or tampered"
            )
        phrase = passphrase or _passphrase(prompt, "Vault passphrase: ")
        if phrase is None:
            raise VaultLockedError(
                f"{vault_path} is locked: set {PASSPHRASE_ENV} or unlock it interactively "
                "(%sci_secret unlock in a notebook)"
            )
        return derive_scrypt(phrase, salt, n, r, p)
    if source == "keyring":
        if not keyring_available():
            raise VaultLockedError(f"{vault_path} keeps its key in the OS keyring, which is not available here")
        import keyring

        stored = keyring.get_password(str(spec.get("service", KEYRING_SERVICE)), str(spec.get("username")))
        if stored is None:
            raise VaultLockedError(f"{vault_path}: its key is missing from the OS keyring ({spec.get('username')})")
        return base64.b64decode(stored)
    if source == "keyfile":
        path = Path(str(spec.get("path")))
        if not path.exists():
            raise VaultLockedError(f"{vault_path}: its key file {path} is missing")
        check_private_file(path, "key file")
        try:
            key = base64.b64decode(path.read_bytes().strip(), validate=True)
        except ValueError:
            raise SecurityError(f"key file {path} is damaged (not base64)") from None
        if len(key) != KEY_BYTES:
            raise SecurityError(f"key file {path} is damaged ({len(key)} bytes, expected {KEY_BYTES})")
        return key
    raise SecurityError(f"{vault_path}: unknown key source {source!r} in the vault header")


def discard_master_key(spec: dict[str, Any]) -> None:
    """Remove the key material of a vault that was rotated away (best effort)."""
    try:
        if spec.get("source") == "keyring":
            import keyring

            keyring.delete_password(str(spec.get("service", KEYRING_SERVICE)), str(spec.get("username")))
        elif spec.get("source") == "keyfile":
            Path(str(spec.get("path"))).unlink(missing_ok=True)
    except Exception as exc:  # the new vault is durable; a leftover old key only wastes space
        log.warning("could not remove the old vault key (%s): %s", spec.get("source"), type(exc).__name__)
