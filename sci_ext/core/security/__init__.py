"""Secrets and security (docs/secrets.md): vault, redaction, API keys, lockout, audit.

>>> from sci_ext.core import get_security_manager
>>> sm = get_security_manager()            # doctest: +SKIP
>>> sm.set_secret("OPENAI_API_KEY", value) # doctest: +SKIP

One idea per module: :mod:`.vault` (AES-256-GCM file), :mod:`.masterkey` (keyring,
scrypt passphrase or key file), :mod:`.redact` (``[REDACTED:NAME]``),
:mod:`.apikeys`, :mod:`.lockout` (token buckets), :mod:`.audit` (hash chain),
:mod:`.dotenv` (``.env`` migration) and :mod:`.manager` (``get_security_manager``).

Names load lazily (PEP 562): ``%load_ext sci_ext`` needs only :mod:`.redact` (output
redaction from the first cell on), and importing ``sci_ext.core.security.redact`` must
not pull in the vault, the audit log and the API-key store.  ``cryptography`` loads on
first use of the vault.  The ``.env`` migrator registers itself where it is used
(``sci_ext.core.config.migrate`` and ``jupyter sci secret``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

# Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "ApiKeyInfo": "apikeys",
    "ApiKeyStore": "apikeys",
    "AuditLog": "audit",
    "AuditVerification": "audit",
    "verify_audit_log": "audit",
    "Lockout": "lockout",
    "TokenBucket": "lockout",
    "normalize_client": "lockout",
    "SecurityManager": "manager",
    "add_auth_failure_hook": "manager",
    "add_failure_budget_hook": "manager",
    "add_lockout_hook": "manager",
    "get_security_manager": "manager",
    "set_security_manager": "manager",
    "Redactor": "redact",
    "StreamRedactor": "redact",
    "get_redactor": "redact",
    "SecretInfo": "vault",
    "Vault": "vault",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - built from the export table

if TYPE_CHECKING:  # pragma: no cover
    from . import dotenv  # noqa: F401
    from .apikeys import ApiKeyInfo, ApiKeyStore  # noqa: F401
    from .audit import AuditLog, AuditVerification, verify_audit_log  # noqa: F401
    from .lockout import Lockout, TokenBucket, normalize_client  # noqa: F401
    from .manager import (  # noqa: F401
        SecurityManager,
        add_auth_failure_hook,
        add_failure_budget_hook,
        add_lockout_hook,
        get_security_manager,
        set_security_manager,
    )
    from .redact import Redactor, StreamRedactor, get_redactor  # noqa: F401
    from .vault import SecretInfo, Vault  # noqa: F401


# The submodules, as attributes: `from sci_ext.core.security import dotenv`.
_SUBMODULES = ("apikeys", "audit", "dotenv", "lockout", "manager", "masterkey", "redact", "vault")

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)
