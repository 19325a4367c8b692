"""Secrets and security (docs/secrets.md): vault, redaction, API keys, lockout, audit.

>>> from sci_ext.core import get_security_manager
>>> sm = get_security_manager()            # doctest: +SKIP
>>> sm.set_secret("OPENAI_API_KEY", value) # doctest: +SKIP

One idea per module: :mod:`.vault` (AES-256-GCM file), :mod:`.masterkey` (keyring,
scrypt passphrase or key file), :mod:`.redact` (``[REDACTED:NAME]``),
:mod:`.apikeys`, :mod:`.lockout` (token buckets), :mod:`.audit` (hash chain),
:mod:`.dotenv` (``.env`` migration) and :mod:`.manager` (``get_security_manager``).
Importing this package does not import ``cryptography``; that happens on first use.
"""

from __future__ import annotations

from . import dotenv
from .apikeys import ApiKeyInfo, ApiKeyStore
from .audit import AuditLog, AuditVerification, verify_audit_log
from .lockout import Lockout, TokenBucket, normalize_client
from .manager import (
    SecurityManager,
    add_auth_failure_hook,
    add_failure_budget_hook,
    add_lockout_hook,
    get_security_manager,
    set_security_manager,
)
from .redact import Redactor, StreamRedactor, get_redactor
from .vault import SecretInfo, Vault

__all__ = [
    "ApiKeyInfo",
    "ApiKeyStore",
    "AuditLog",
    "AuditVerification",
    "Lockout",
    "Redactor",
    "SecretInfo",
    "SecurityManager",
    "StreamRedactor",
    "TokenBucket",
    "Vault",
    "add_auth_failure_hook",
    "add_failure_budget_hook",
    "add_lockout_hook",
    "get_redactor",
    "get_security_manager",
    "normalize_client",
    "set_security_manager",
    "verify_audit_log",
]

# `jupyter sci config migrate .env` learns about .env files once security is in use.
dotenv.register()
