"""Who may read the sci endpoints: Jupyter's own auth, or a ``metrics:read`` API key.

Order for a request:

1. a user Jupyter authenticated (token, cookie, password) and its authorizer allows
   (``read`` on resource ``sci``) passes;
2. else, where the endpoint accepts it, ``Authorization: Bearer <API key>`` is
   validated by the security manager (constant time; failures counted, audited and
   rate-limited per client by its lockout);
3. else the request fails with 401 (no or bad credentials) or 403 (wrong scope,
   locked out, not authorized), with no data.

Strikes (review R1): a request that presents *no* credential is counted
(``sci_auth_failures_total``) and audited but is no strike, so anonymous requests
cannot lock anybody out.  A request that presents one (a bad API key, a malformed or
foreign ``Authorization`` header) strikes the pair (client, presented key id); a pair
over ``security.max_auth_failures_per_minute`` gets 403 for ``lockout_seconds``.  A
correct key is never refused by a lockout (see
:meth:`~sci_ext.core.security.manager.SecurityManager.validate_api_key`), and Jupyter's
own auth is decided before any of this.

The client string that reaches the audit log is bounded and escaped (security
review V8): ``http:`` + the remote address, printable ASCII only, at most 80 chars.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

__all__ = ["AuthDecision", "authenticate_bearer", "client_id", "parse_bearer", "record_failure", "refuse"]

log = logging.getLogger("sci_ext.server")

MAX_HEADER_CHARS = 4096
MAX_CLIENT_CHARS = 80
_TOKEN_OK = re.compile(r"^[A-Za-z0-9_\-.~+/=]{1,512}$")
_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class AuthDecision:
    """The outcome for one request: ``status`` 200, 401 or 403 and a short reason."""

    status: int
    reason: str
    key_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the request may read."""
        return self.status == 200


def client_id(remote_ip: str | None) -> str:
    """``http:<address>``, escaped to printable ASCII and bounded (what the audit log sees)."""
    raw = str(remote_ip or "unknown")
    escaped = raw.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(ch if 32 < ord(ch) < 127 else f"\\x{ord(ch):02x}" for ch in escaped)
    return "http:" + escaped[: MAX_CLIENT_CHARS - 5]


def parse_bearer(header: str | None) -> tuple[str | None, str | None]:
    """``(token, None)`` for a well-formed ``Bearer`` header, ``(None, problem)`` otherwise.

    ``(None, None)``: no header at all.  A Jupyter ``token`` scheme is not ours: it is
    reported as ``"scheme"`` (Jupyter already rejected it when we get here).
    """
    if header is None or header == "":
        return None, None
    if len(header) > MAX_HEADER_CHARS:
        return None, "malformed"
    match = _BEARER.match(header)
    if match is None:
        return None, "malformed" if not header.lower().startswith("token ") else "scheme"
    token = match.group(1)
    if not _TOKEN_OK.match(token):
        return None, "malformed"
    return token, None


def record_failure(client: str, reason: str, key_id: str | None = None) -> bool:
    """Count and audit a failure outside API-key validation (a strike unless ``reason`` is ``"missing"``).

    True when the pair (client, ``key_id`` or ``reason``) is locked out.
    """
    from ..core.security import get_security_manager

    try:
        return bool(get_security_manager().record_auth_failure(client, reason, key_id))
    except Exception as exc:  # an unusable state dir (audit log) must not turn a 401 into a 500
        log.warning("sci_ext: auth failure from %s not recorded: %s", client, exc)
        return False


def refuse(header: str | None, client: str) -> AuthDecision:
    """The decision for an endpoint that takes Jupyter auth only (blocking: audit I/O)."""
    from ..core.security.lockout import presented_key_id

    token, problem = parse_bearer(header)
    if token is not None:
        locked = record_failure(client, "api-key-not-accepted", presented_key_id(token))
    else:
        locked = record_failure(client, problem or "missing")
    if locked:
        return AuthDecision(403, "locked out after repeated authentication failures")
    return AuthDecision(401, "authentication required")


def authenticate_bearer(header: str | None, client: str, scope: str = "metrics:read") -> AuthDecision:
    """Decide on a request that Jupyter did not authenticate (blocking: file I/O for keys and audit)."""
    from ..core.errors import AuthenticationError, RateLimitExceeded
    from ..core.security import get_security_manager

    token, problem = parse_bearer(header)
    if token is None:
        reason = problem or "missing"
        if record_failure(client, reason):
            return AuthDecision(403, "locked out after repeated authentication failures")
        if reason == "missing":
            return AuthDecision(401, "authentication required")
        return AuthDecision(401, "malformed Authorization header" if reason == "malformed" else "invalid credentials")
    try:
        info = get_security_manager().validate_api_key(token, scope, client=client)
    except RateLimitExceeded:
        return AuthDecision(403, "locked out after repeated authentication failures")
    except AuthenticationError as exc:
        message = str(exc)
        if "scope" in message:
            return AuthDecision(403, f"API key lacks the scope {scope}")
        return AuthDecision(401, "invalid or expired API key")
    except Exception as exc:  # key store or audit log unusable: fail closed, say why in the log only
        log.warning("sci_ext: API key validation failed for %s: %s", client, exc)
        return AuthDecision(401, "invalid credentials")
    return AuthDecision(200, "api key", info.key_id)
