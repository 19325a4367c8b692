"""``get_security_manager()``: the vault, API keys, lockout and audit log in one place.

The manager is built from the current configuration (``security`` and
``core.state_dir``) and rebuilt when those settings change.  Every operation is
audited; secret values read through it are registered with the redactor, so they
are replaced by ``[REDACTED:NAME]`` in kernel outputs and logs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import AuthenticationError, RateLimitExceeded, SecurityError
from ..events import hook_list
from .anonymous import AnonymousFailureAudit
from .apikeys import DEFAULT_SCOPES, ApiKeyInfo, ApiKeyStore
from .audit import AuditLog, AuditVerification, verify_audit_log
from .lockout import Lockout, lockout_slot, normalize_client, presented_key_id
from .masterkey import Prompt, default_prompt
from .redact import get_redactor, install_log_redaction
from .vault import SecretInfo, Vault

__all__ = [
    "SecurityManager",
    "add_auth_failure_hook",
    "add_failure_budget_hook",
    "add_lockout_hook",
    "flush_pending_audit",
    "get_security_manager",
    "set_security_manager",
]

AuthFailureHook = Callable[[str, str], None]
LockoutHook = Callable[[str, float], None]
BudgetHook = Callable[[int], None]

# Process-wide hooks survive the manager being rebuilt after a config change (metrics, alerts).
# Named lists (events.hook_list): telemetry subscribes without importing this module.
_AUTH_FAILURE_HOOKS: list[AuthFailureHook] = hook_list("security auth failure")
_LOCKOUT_HOOKS: list[LockoutHook] = hook_list("security lockout")
_BUDGET_HOOKS: list[BudgetHook] = []


def add_auth_failure_hook(hook: AuthFailureHook) -> Callable[[], None]:
    """Call ``hook(client, reason)`` on every failed API-key validation; returns an undo."""
    _AUTH_FAILURE_HOOKS.append(hook)
    return lambda: _AUTH_FAILURE_HOOKS.remove(hook) if hook in _AUTH_FAILURE_HOOKS else None


def add_lockout_hook(hook: LockoutHook) -> Callable[[], None]:
    """Call ``hook(client, seconds)`` whenever a client gets locked out; returns an undo."""
    _LOCKOUT_HOOKS.append(hook)
    return lambda: _LOCKOUT_HOOKS.remove(hook) if hook in _LOCKOUT_HOOKS else None


def add_failure_budget_hook(hook: BudgetHook) -> Callable[[], None]:
    """Call ``hook(failures_per_minute)`` when all clients together exceed the failure budget (alerts)."""
    _BUDGET_HOOKS.append(hook)
    return lambda: _BUDGET_HOOKS.remove(hook) if hook in _BUDGET_HOOKS else None


class SecurityManager:
    """Vault, API keys, rate limiting and audit, configured from ``security``."""

    def __init__(
        self,
        *,
        vault_path: Path | str,
        state_dir: Path | str,
        kdf: tuple[int, int, int] = (2**17, 8, 1),
        key_source: str = "auto",
        key_dir: Path | str | None = None,
        audit_path: Path | str | None = None,
        max_auth_failures_per_minute: int = 10,
        lockout_seconds: float = 300.0,
        redact_outputs: bool = True,
        prompt: Prompt | None = default_prompt,
        clock: Callable[[], float] = time.monotonic,
        anonymous_audit_window: float = 60.0,
    ) -> None:
        self._lock = threading.RLock()
        self.audit_log = AuditLog(audit_path or Path(state_dir) / "audit" / "audit.jsonl", key_dir=key_dir)
        # Failures without a credential: the first per client and window audited, the rest summed.
        self.anonymous_audit = AnonymousFailureAudit(self.audit, window=anonymous_audit_window)
        self.vault = Vault(vault_path, kdf=kdf, key_source=key_source, key_dir=key_dir, prompt=prompt, audit=self.audit)
        self.apikeys = ApiKeyStore(Path(vault_path).expanduser().parent / "apikeys.json")
        self.lockout = Lockout(
            max_auth_failures_per_minute,
            lockout_seconds,
            clock=clock,
            on_lockout=self._locked_out,
            on_budget_exceeded=self._budget_exceeded,
        )
        self.redact_outputs = redact_outputs
        self.redactor = get_redactor()
        self.auth_failures_total = 0
        self._auth_failure_hooks: list[AuthFailureHook] = []
        self._lockout_hooks: list[LockoutHook] = []
        self._reads_audited: set[str] = set()
        if redact_outputs:
            install_log_redaction(self.redactor)

    @classmethod
    def from_config(cls, config: Any = None, **overrides: Any) -> SecurityManager:
        """A manager for ``config`` (default: the current one)."""
        if config is None:
            from ..config import get_config

            config = get_config()
        sec = config.security
        kwargs: dict[str, Any] = {
            "vault_path": sec.vault_path,
            "state_dir": config.core.state_dir,
            "kdf": (sec.kdf_n, sec.kdf_r, sec.kdf_p),
            "key_source": sec.key_source,
            "key_dir": sec.key_dir,
            "audit_path": sec.audit_path,
            "max_auth_failures_per_minute": sec.max_auth_failures_per_minute,
            "lockout_seconds": sec.lockout_seconds,
            "redact_outputs": sec.redact_outputs,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    # ------------------------------------------------------------------ audit
    def audit(self, event: str, **details: Any) -> None:
        """Append an audit record (names and facts only, never values)."""
        self.audit_log.append(event, **details)

    def flush_audit(self) -> int:
        """Write the pending sums of failures without a credential now (see :mod:`.anonymous`)."""
        return self.anonymous_audit.flush()

    def verify_audit(self) -> AuditVerification:
        """Check the audit chain."""
        return verify_audit_log(self.audit_log.path, self.audit_log.key_dir)

    # ------------------------------------------------------------------ vault
    def set_secret(self, name: str, value: str) -> None:
        """Store secret ``name`` in the vault (and redact its value from now on)."""
        self.vault.set(name, value)
        self._remember(name, value)

    def get_secret(self, name: str) -> str:
        """The value of ``name``; it is redacted from outputs and logs from now on."""
        value = self.vault.get(name)
        self._remember(name, value)
        if name not in self._reads_audited:  # once per name and process: a get is meant to be cheap
            self._reads_audited.add(name)
            self.audit("secret.read", name=name)
        return value

    def delete_secret(self, name: str) -> None:
        """Remove ``name`` from the vault (values already shown stay redacted)."""
        self.vault.delete(name)

    def list_secrets(self) -> list[SecretInfo]:
        """Names and times of every secret, never values."""
        return self.vault.list()

    def export_secrets(self, names: Iterable[str] = (), *, all: bool = False) -> list[str]:
        """Put secrets into ``os.environ`` (their values are redacted from outputs)."""
        wanted = self.vault.names() if all else list(names)
        if not wanted:
            if all:
                raise SecurityError(f"nothing to export: the vault {self.vault.path} holds no secrets")
            raise SecurityError("nothing to export: give secret names or all=True")
        missing = [n for n in wanted if n not in self.vault.names()]
        if missing:
            raise KeyError(f"no secret named {', '.join(missing)} in {self.vault.path}")
        for name in wanted:
            value = self.vault.get(name)
            self._remember(name, value)
            os.environ[name] = value
        self.audit("secret.export", names=sorted(wanted))
        return wanted

    def rotate(self, passphrase: str | None = None) -> None:
        """New master key; every secret re-encrypted."""
        self.vault.rotate(passphrase)

    def lock(self) -> None:
        """Forget the master key until the next use."""
        self.vault.lock()
        self._reads_audited.clear()

    def unlock(self, passphrase: str | None = None) -> None:
        """Unlock now (creating the vault if there is none)."""
        self.vault.unlock(passphrase)

    def _remember(self, name: str, value: str) -> None:
        if self.redact_outputs:
            self.redactor.add(name, value)

    # --------------------------------------------------------------- API keys
    def generate_api_key(
        self, name: str, scopes: Iterable[str] = DEFAULT_SCOPES, ttl_seconds: float | None = None
    ) -> str:
        """Create an API key; the token ``sci_<id>_<secret>`` is returned only now."""
        with self._lock:
            token, info = self.apikeys.generate(name, tuple(scopes), ttl_seconds)
            self.audit("apikey.create", key_id=info.key_id, name=name, scopes=list(info.scopes), expires=info.expires)
        return token

    def validate_api_key(self, token: str, scope: str = "metrics:read", *, client: str = "local") -> ApiKeyInfo:
        """The key's info if ``token`` is valid for ``scope``.

        Raises :class:`AuthenticationError` (invalid, expired, wrong scope) or
        :class:`RateLimitExceeded` when a failing attempt comes from a (client, presented
        key id) pair that is locked out.  Constant time in the token's secret; cheap and
        thread-safe.  ``client`` is normalised
        (:func:`~sci_ext.core.security.lockout.normalize_client`).

        Strikes are keyed on the client *and* the key id the token names (review R1):
        one client's failures never lock out another key, and a token whose secret is
        right is accepted even while its pair is locked out (the 256-bit secret cannot be
        guessed; refusing it would let anybody who knows a key id, which is not secret,
        lock its owner out).  Only failing attempts are slowed down while all clients
        together are over the global failure budget, so rotating attackers are slowed
        and a good key is not.
        """
        client = normalize_client(client)
        key_id = presented_key_id(token)
        try:
            info = self.apikeys.check(token)
        except AuthenticationError:
            self._refuse(client, "invalid", key_id)
            raise
        if info.expired():
            self._refuse(client, "expired", info.key_id)
            raise AuthenticationError(f"API key {info.key_id} has expired")
        if not info.allows(scope):
            self._refuse(client, "scope", info.key_id)
            raise AuthenticationError(f"API key {info.key_id} lacks the scope {scope!r}")
        return info

    def revoke_api_key(self, key_id: str) -> ApiKeyInfo:
        """Delete an API key by id."""
        with self._lock:
            info = self.apikeys.revoke(key_id)
            self.audit("apikey.revoke", key_id=info.key_id, name=info.name)
        return info

    def rotate_api_key(self, key_id: str, ttl_seconds: float | None = None) -> str:
        """Replace a key by a new one with the same name and scopes; returns the new token."""
        with self._lock:  # re-entrant: generate and revoke take the same lock
            old = self.apikeys.get(key_id)
            token = self.generate_api_key(old.name, old.scopes, ttl_seconds)
            self.revoke_api_key(key_id)
        return token

    def list_api_keys(self) -> list[ApiKeyInfo]:
        """Every API key (never a secret)."""
        return self.apikeys.list()

    # ---------------------------------------------------- failures and lockout
    def on_auth_failure(self, hook: AuthFailureHook) -> None:
        """Call ``hook(client, reason)`` on every failed validation (metrics)."""
        self._auth_failure_hooks.append(hook)

    def on_lockout(self, hook: LockoutHook) -> None:
        """Call ``hook(client, seconds)`` when a client gets locked out (alerts)."""
        self._lockout_hooks.append(hook)

    def record_auth_failure(self, client: str, reason: str, key_id: str | None = None) -> bool:
        """Count, audit and (unless nothing was presented) strike a failure outside :meth:`validate_api_key`.

        ``reason`` ``"missing"`` (no credential at all) is counted but is no strike (review
        R1: anonymous requests must not lock anybody out), and its audit is bounded: each
        client's first in a window is audited at once, the rest summed in one record per
        client and window (:mod:`.anonymous`: otherwise every anonymous request would cost
        three fsyncs).  Other failures are each audited and strike the pair (client,
        ``key_id`` or the reason).  Returns True when that pair is locked out (then the
        failure is counted but not audited again: the lockout was).
        """
        client = normalize_client(client)
        if reason == "missing":
            with self._lock:
                self.auth_failures_total += 1
            self.anonymous_audit.note(client)
            self._call_failure_hooks(client, reason)
            return False
        try:
            self._refuse(client, reason, key_id or reason)
        except RateLimitExceeded:
            return True
        return False

    def is_locked_out(self, client: str, key_id: str) -> bool:
        """True while the pair (client, presented key id) is locked out."""
        return self.lockout.is_locked(lockout_slot(normalize_client(client), key_id))

    def _refuse(self, client: str, reason: str, key_id: str) -> None:
        """A failing attempt by (client, key id): raise if the pair is locked, else strike and throttle."""
        slot = lockout_slot(client, key_id)
        if self.lockout.is_locked(slot):
            with self._lock:
                self.auth_failures_total += 1
            self.lockout.check(slot)  # raises RateLimitExceeded with the time left
        self._count_failure(client, reason, key_id)
        self.lockout.failure(slot)
        self.lockout.throttle()  # only failures wait: a good key is never slowed by others

    def _count_failure(self, client: str, reason: str, key_id: str | None) -> None:
        with self._lock:
            self.auth_failures_total += 1
        self.audit("auth.failure", client=client, reason=reason, key_id=key_id)
        self._call_failure_hooks(client, reason)

    def _call_failure_hooks(self, client: str, reason: str) -> None:
        for hook in [*_AUTH_FAILURE_HOOKS, *self._auth_failure_hooks]:
            hook(client, reason)

    def _budget_exceeded(self, failures_per_minute: int) -> None:
        self.audit(
            "auth.failure_budget_exceeded",
            failures_per_minute=failures_per_minute,
            delay_seconds=self.lockout.global_delay,
        )
        for hook in list(_BUDGET_HOOKS):
            hook(failures_per_minute)

    def _locked_out(self, client: str, seconds: float) -> None:
        self.audit("auth.lockout", client=client, seconds=seconds)
        for hook in [*_LOCKOUT_HOOKS, *self._lockout_hooks]:
            hook(client, seconds)


_manager: SecurityManager | None = None
_manager_key: tuple[Any, ...] | None = None
_manager_pinned = False
_manager_lock = threading.Lock()


def _config_key(config: Any) -> tuple[Any, ...]:
    sec = config.security
    return (
        sec.vault_path,
        config.core.state_dir,
        sec.kdf_n,
        sec.kdf_r,
        sec.kdf_p,
        sec.key_source,
        sec.key_dir,
        sec.audit_path,
        sec.max_auth_failures_per_minute,
        sec.lockout_seconds,
        sec.redact_outputs,
    )


def get_security_manager() -> SecurityManager:
    """The process-wide :class:`SecurityManager` for the current configuration."""
    global _manager, _manager_key
    from ..config import get_config

    config = get_config()
    key = _config_key(config)
    old = None
    with _manager_lock:
        if _manager is not None and _manager_pinned:
            return _manager
        if _manager is None or key != _manager_key:
            old, (_manager, _manager_key) = _manager, (SecurityManager.from_config(config), key)
        current = _manager
    _retire(old)
    return current


def set_security_manager(manager: SecurityManager | None) -> None:
    """Replace the process-wide manager (``None``: rebuild on next use)."""
    global _manager, _manager_key, _manager_pinned
    with _manager_lock:
        old = _manager if _manager is not manager else None
        _manager, _manager_key, _manager_pinned = manager, None, manager is not None
    _retire(old)


def _retire(old: SecurityManager | None) -> None:
    """A replaced manager writes its pending sums of anonymous failures (into its own log)."""
    if old is not None:
        old.anonymous_audit.close()


def flush_pending_audit() -> None:
    """Write the current manager's pending sums, if there is a manager (the server calls it when it stops)."""
    with _manager_lock:
        manager = _manager
    if manager is not None:
        manager.flush_audit()
