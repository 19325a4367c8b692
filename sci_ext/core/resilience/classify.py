"""Tell transient failures (worth a retry) from permanent ones, without importing SDKs.

:func:`classify_error` looks, in order, at sci_ext's own errors, an HTTP status on the
exception or its ``response``, the class names used by the usual HTTP clients and LLM
SDKs (OpenAI, Anthropic, httpx, requests, aiohttp, urllib3; matched by name along the
MRO so none of them is imported), builtin connection and timeout errors, ``OSError``
errnos, and finally the exception's cause.  Certificate and other TLS failures are
permanent wherever they sit in the chain (a handshake cut short by the network is
transient).  :func:`retry_after` reads a server's
``Retry-After`` (seconds or an HTTP date) from the exception or its response.
"""

from __future__ import annotations

import errno
import math
import socket
import time
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

from ..errors import (
    AuthenticationError,
    CacheError,
    CircuitOpenError,
    ConfigError,
    PermanentError,
    RateLimitExceeded,
    SecurityError,
    TransientError,
    VaultLockedError,
)

__all__ = [
    "RETRYABLE",
    "ErrorCategory",
    "classify_error",
    "http_status",
    "is_transient",
    "retry_after",
]


class ErrorCategory(str, Enum):
    """What kind of failure an exception is; compares equal to its string value."""

    TRANSIENT = "transient"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    PERMANENT = "permanent"
    AUTH = "auth"
    CONFIG = "config"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


#: Categories that are retried by default.
RETRYABLE: frozenset[ErrorCategory] = frozenset(
    {ErrorCategory.TRANSIENT, ErrorCategory.RATE_LIMIT, ErrorCategory.TIMEOUT}
)

# Class names of third-party exceptions, matched anywhere in the MRO.  The names are
# those of openai / anthropic (RateLimitError, APIConnectionError, ...), httpx
# (ConnectTimeout, ReadTimeout, RemoteProtocolError, ...), requests (ConnectionError,
# ChunkedEncodingError, ...), aiohttp (ClientConnectionError, ServerDisconnectedError,
# ...), urllib3 (ProtocolError, NewConnectionError, ...), litellm and google-api-core.
_NAMES: dict[str, ErrorCategory] = {
    "RateLimitError": ErrorCategory.RATE_LIMIT,
    "TooManyRequests": ErrorCategory.RATE_LIMIT,
    "ResourceExhausted": ErrorCategory.RATE_LIMIT,
    "APITimeoutError": ErrorCategory.TIMEOUT,
    "Timeout": ErrorCategory.TIMEOUT,
    "TimeoutException": ErrorCategory.TIMEOUT,
    "ConnectTimeout": ErrorCategory.TIMEOUT,
    "ReadTimeout": ErrorCategory.TIMEOUT,
    "WriteTimeout": ErrorCategory.TIMEOUT,
    "PoolTimeout": ErrorCategory.TIMEOUT,
    "ServerTimeoutError": ErrorCategory.TIMEOUT,
    "ConnectTimeoutError": ErrorCategory.TIMEOUT,
    "ReadTimeoutError": ErrorCategory.TIMEOUT,
    "DeadlineExceeded": ErrorCategory.TIMEOUT,
    "APIConnectionError": ErrorCategory.TRANSIENT,
    "InternalServerError": ErrorCategory.TRANSIENT,
    "ServiceUnavailableError": ErrorCategory.TRANSIENT,
    "ServiceUnavailable": ErrorCategory.TRANSIENT,
    "OverloadedError": ErrorCategory.TRANSIENT,
    "APIError": ErrorCategory.UNKNOWN,  # a base class: only its status decides
    "ConnectError": ErrorCategory.TRANSIENT,
    "ConnectionError": ErrorCategory.TRANSIENT,
    "ReadError": ErrorCategory.TRANSIENT,
    "WriteError": ErrorCategory.TRANSIENT,
    "NetworkError": ErrorCategory.TRANSIENT,
    "RemoteProtocolError": ErrorCategory.TRANSIENT,
    "ProtocolError": ErrorCategory.TRANSIENT,
    "ChunkedEncodingError": ErrorCategory.TRANSIENT,
    "NewConnectionError": ErrorCategory.TRANSIENT,
    "ClientConnectionError": ErrorCategory.TRANSIENT,
    "ClientConnectorError": ErrorCategory.TRANSIENT,
    "ClientOSError": ErrorCategory.TRANSIENT,
    "ServerDisconnectedError": ErrorCategory.TRANSIENT,
    "ClientPayloadError": ErrorCategory.TRANSIENT,
    "IncompleteRead": ErrorCategory.TRANSIENT,
    "RemoteDisconnected": ErrorCategory.TRANSIENT,
    "AuthenticationError": ErrorCategory.AUTH,
    "PermissionDeniedError": ErrorCategory.AUTH,
    "Unauthenticated": ErrorCategory.AUTH,
    "PermissionDenied": ErrorCategory.AUTH,
    "BadRequestError": ErrorCategory.PERMANENT,
    "NotFoundError": ErrorCategory.PERMANENT,
    "UnprocessableEntityError": ErrorCategory.PERMANENT,
    "ConflictError": ErrorCategory.PERMANENT,
    "InvalidRequestError": ErrorCategory.PERMANENT,
    "ContentPolicyViolationError": ErrorCategory.PERMANENT,
    "ContextWindowExceededError": ErrorCategory.PERMANENT,
    "InvalidURL": ErrorCategory.PERMANENT,
    "MissingSchema": ErrorCategory.PERMANENT,
    "InvalidSchema": ErrorCategory.PERMANENT,
    "UnsupportedProtocol": ErrorCategory.PERMANENT,
    "TooManyRedirects": ErrorCategory.PERMANENT,
}

# errnos that describe a network or resource blip rather than a mistake.
_TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNRESET",
        "ECONNREFUSED",
        "ECONNABORTED",
        "EPIPE",
        "EHOSTUNREACH",
        "EHOSTDOWN",
        "ENETUNREACH",
        "ENETDOWN",
        "ENETRESET",
        "EAGAIN",
        "EWOULDBLOCK",
        "EINTR",
        "EBUSY",
        "ENOBUFS",
        "EADDRNOTAVAIL",
        "ESHUTDOWN",
    )
    if hasattr(errno, name)
)
_TIMEOUT_ERRNOS = frozenset({errno.ETIMEDOUT})
_TRANSIENT_GAI = frozenset(
    getattr(socket, name) for name in ("EAI_AGAIN", "EAI_FAIL", "EAI_NODATA") if hasattr(socket, name)
)


def _status_of(obj: Any) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(obj, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status carried by ``exc`` (``status_code``, ``status``, ``response.status_code``)."""
    status = _status_of(exc)
    if status is None:
        response = getattr(exc, "response", None)
        if response is not None:
            status = _status_of(response)
    return status


def _from_status(status: int) -> ErrorCategory:
    if status == 429:
        return ErrorCategory.RATE_LIMIT
    if status in (408, 504):
        return ErrorCategory.TIMEOUT
    if status == 425 or status >= 500:
        return ErrorCategory.TRANSIENT
    if status in (401, 403, 407):
        return ErrorCategory.AUTH
    if status >= 400:
        return ErrorCategory.PERMANENT
    return ErrorCategory.UNKNOWN  # 1xx-3xx raised as errors: nothing to go on


def _own(exc: BaseException) -> ErrorCategory | None:
    if isinstance(exc, RateLimitExceeded):
        return ErrorCategory.RATE_LIMIT
    if isinstance(exc, (AuthenticationError, VaultLockedError)):
        return ErrorCategory.AUTH
    if isinstance(exc, ConfigError):
        return ErrorCategory.CONFIG
    if isinstance(exc, (TransientError, CircuitOpenError)):
        return ErrorCategory.TRANSIENT
    if isinstance(exc, (PermanentError, SecurityError, CacheError)):
        return ErrorCategory.PERMANENT
    return None


# TLS failures.  A certificate that does not verify (untrusted, expired, self-signed,
# wrong host) fails the same way on every retry: permanent, even when a client wraps it
# in a "connection error" (httpx ConnectError, openai APIConnectionError, requests
# SSLError).  So is any other TLS failure (wrong protocol version, no shared cipher,
# an https URL on an http port), except an EOF or reset during the handshake, which is
# the network dropping the connection: transient.
_CERT_NAMES = frozenset(
    {
        "SSLCertVerificationError",
        "CertificateError",
        "ClientConnectorCertificateError",
        "ServerCertificateError",
        "ServerFingerprintMismatch",
    }
)
_TLS_NAMES = frozenset({"SSLError", "ClientSSLError", "ClientConnectorSSLError"})
_TLS_DROP_NAMES = frozenset({"SSLEOFError", "SSLZeroReturnError"})
_CERT_MARKERS = (
    "certificate_verify_failed",
    "certificate verify failed",
    "certificate has expired",
    "unable to get local issuer certificate",
)
_TLS_DROP_MARKERS = ("unexpected_eof_while_reading", "eof occurred in violation of protocol")


def _chain(exc: BaseException, limit: int = 12) -> list[BaseException]:
    """``exc`` and what it wraps: causes, contexts, ``reason`` and exception arguments."""
    found: list[BaseException] = []
    pending = [exc]
    while pending and len(found) < limit:
        current = pending.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return found


def _tls(exc: BaseException) -> ErrorCategory | None:
    """``permanent`` for a certificate or TLS failure anywhere in ``exc``'s chain, ``transient``
    for a handshake the network cut short, ``None`` when TLS is not involved."""
    chain = _chain(exc)
    # Class names along the MRO, so ``ssl`` and no client library is imported here
    # (``ssl.SSLError`` and its subclasses carry ``SSLError`` in theirs).
    names = [{klass.__name__ for klass in type(item).__mro__} for item in chain]
    texts = [str(item).lower() for item in chain]
    if any(kinds & _CERT_NAMES for kinds in names):
        return ErrorCategory.PERMANENT
    if any(marker in text for text in texts for marker in _CERT_MARKERS):
        return ErrorCategory.PERMANENT
    if not any(kinds & _TLS_NAMES for kinds in names):
        return None
    dropped = any(kinds & _TLS_DROP_NAMES for kinds in names) or any(
        marker in text for text in texts for marker in _TLS_DROP_MARKERS
    )
    dropped = dropped or any(isinstance(item, ConnectionError) for item in chain)
    return ErrorCategory.TRANSIENT if dropped else ErrorCategory.PERMANENT


def _builtin(exc: BaseException) -> ErrorCategory | None:
    if isinstance(exc, TimeoutError):  # socket.timeout, asyncio.TimeoutError (3.11+)
        return ErrorCategory.TIMEOUT
    if isinstance(exc, ConnectionError):  # reset, refused, aborted, broken pipe
        return ErrorCategory.TRANSIENT
    if isinstance(exc, socket.gaierror):
        return ErrorCategory.TRANSIENT if exc.errno in _TRANSIENT_GAI else ErrorCategory.PERMANENT
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno in _TIMEOUT_ERRNOS:
            return ErrorCategory.TIMEOUT
        if exc.errno in _TRANSIENT_ERRNOS:
            return ErrorCategory.TRANSIENT
    if type(exc).__name__ == "TimeoutError":  # asyncio.TimeoutError on Python 3.10
        return ErrorCategory.TIMEOUT
    return None


def _by_name(exc: BaseException) -> ErrorCategory | None:
    for klass in type(exc).__mro__:
        category = _NAMES.get(klass.__name__)
        if category is not None and category is not ErrorCategory.UNKNOWN:
            return category
        if klass.__module__ == "builtins":
            break  # builtin bases (ConnectionError, TimeoutError) are judged by type
    return None


def classify_error(exc: BaseException, _depth: int = 0) -> ErrorCategory:
    """The category of ``exc``: transient, rate_limit, timeout, permanent, auth, config or unknown.

    >>> classify_error(ConnectionResetError())
    <ErrorCategory.TRANSIENT: 'transient'>
    >>> str(classify_error(ValueError("bad input")))
    'unknown'
    """
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: never a failure to retry
        return ErrorCategory.UNKNOWN
    category = _own(exc)
    if category is not None:
        return category
    if _depth == 0:
        category = _tls(exc)  # before names: a certificate failure wrapped as a "connection error"
        if category is not None:
            return category
    status = http_status(exc)
    if status is not None:
        category = _from_status(status)
        if category is not ErrorCategory.UNKNOWN:
            return category
    category = _by_name(exc) or _builtin(exc)
    if category is not None:
        return category
    # Wrappers (urllib's URLError, requests' ConnectionError over urllib3) keep the real
    # failure in ``reason`` or the exception chain.
    if _depth < 4:
        for inner in (getattr(exc, "reason", None), exc.__cause__, exc.__context__):
            if isinstance(inner, BaseException) and inner is not exc:
                category = classify_error(inner, _depth + 1)
                if category is not ErrorCategory.UNKNOWN:
                    return category
    return ErrorCategory.UNKNOWN


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is worth retrying (transient, rate limit or timeout)."""
    return classify_error(exc) in RETRYABLE


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    for key in (name, name.lower(), name.title()):
        try:
            value = getter(key)
        except Exception:
            return None
        if value is not None:
            return str(value)
    return None


def _parse_retry_after(value: str, now: float) -> float | None:
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def retry_after(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``), or ``None``.

    Read from an ``exc.retry_after`` attribute, or the ``Retry-After`` /
    ``retry-after-ms`` header of ``exc.headers`` or ``exc.response.headers``; the
    header may hold seconds or an HTTP date.  Never negative.
    """
    now = time.time() if now is None else now
    direct = getattr(exc, "retry_after", None)
    if isinstance(direct, (int, float)) and not isinstance(direct, bool):
        return max(0.0, float(direct))
    if isinstance(direct, str):
        parsed = _parse_retry_after(direct, now)
        if parsed is not None:
            return parsed
    response = getattr(exc, "response", None)
    for headers in (getattr(exc, "headers", None), getattr(response, "headers", None)):
        millis = _header(headers, "retry-after-ms")
        if millis is not None:
            try:
                return max(0.0, float(millis) / 1000.0)
            except ValueError:
                pass
        value = _header(headers, "Retry-After")
        if value is not None:
            parsed = _parse_retry_after(value, now)
            if parsed is not None:
                return parsed
    return None
