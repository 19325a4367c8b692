"""classify_error and retry_after: builtins, HTTP statuses, SDK names, real client errors."""

from __future__ import annotations

import errno
import socket
import urllib.error
import urllib.request
from email.utils import formatdate

import pytest

from sci_ext.core import errors
from sci_ext.core.resilience import ErrorCategory, classify_error, http_status, is_transient, retry_after

C = ErrorCategory


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionResetError(), C.TRANSIENT),
        (ConnectionRefusedError(), C.TRANSIENT),
        (BrokenPipeError(), C.TRANSIENT),
        (TimeoutError(), C.TIMEOUT),
        (TimeoutError(), C.TIMEOUT),
        (OSError(errno.ETIMEDOUT, "timed out"), C.TIMEOUT),
        (OSError(errno.ENETUNREACH, "network unreachable"), C.TRANSIENT),
        (OSError(errno.EHOSTUNREACH, "no route"), C.TRANSIENT),
        (OSError(errno.ENOENT, "no such file"), C.UNKNOWN),
        (socket.gaierror(socket.EAI_AGAIN, "temporary failure"), C.TRANSIENT),
        (socket.gaierror(socket.EAI_NONAME, "unknown host"), C.PERMANENT),
        (ValueError("bad"), C.UNKNOWN),
        (errors.TransientError("blip"), C.TRANSIENT),
        (errors.PermanentError("no"), C.PERMANENT),
        (errors.ConfigError("bad key"), C.CONFIG),
        (errors.AuthenticationError("bad key"), C.AUTH),
        (errors.VaultLockedError("locked"), C.AUTH),
        (errors.RateLimitExceeded("slow down"), C.RATE_LIMIT),
        (errors.CacheError("corrupt"), C.PERMANENT),
        (KeyboardInterrupt(), C.UNKNOWN),
        (SystemExit(1), C.UNKNOWN),
    ],
)
def test_builtin_and_own_errors(exc, expected):
    assert classify_error(exc) is expected


class _Status(Exception):
    def __init__(self, status: int, attr: str = "status_code") -> None:
        super().__init__(f"HTTP {status}")
        setattr(self, attr, status)


class _Response:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.headers = headers or {}


class _WithResponse(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = _Response(status, headers)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (408, C.TIMEOUT),
        (425, C.TRANSIENT),
        (429, C.RATE_LIMIT),
        (500, C.TRANSIENT),
        (502, C.TRANSIENT),
        (503, C.TRANSIENT),
        (504, C.TIMEOUT),
        (529, C.TRANSIENT),
        (400, C.PERMANENT),
        (404, C.PERMANENT),
        (422, C.PERMANENT),
        (401, C.AUTH),
        (403, C.AUTH),
    ],
)
def test_http_status_from_every_attribute(status, expected):
    assert classify_error(_Status(status)) is expected
    assert classify_error(_Status(status, "status")) is expected
    assert classify_error(_WithResponse(status)) is expected
    assert http_status(_WithResponse(status)) == status


def test_status_must_be_an_http_status():
    assert classify_error(_Status(True)) is C.UNKNOWN  # a bool is not a status
    exc = ValueError("x")
    exc.status = "FAILED"  # type: ignore[attr-defined]
    assert classify_error(exc) is C.UNKNOWN


def _named(name: str, base: type[Exception] = Exception, **attrs: object) -> Exception:
    klass = type(name, (base,), {"__module__": "openai"})
    exc = klass("boom")
    for key, value in attrs.items():
        setattr(exc, key, value)
    return exc


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("RateLimitError", C.RATE_LIMIT),
        ("APIConnectionError", C.TRANSIENT),
        ("APITimeoutError", C.TIMEOUT),
        ("InternalServerError", C.TRANSIENT),
        ("ServiceUnavailableError", C.TRANSIENT),
        ("OverloadedError", C.TRANSIENT),
        ("ConnectTimeout", C.TIMEOUT),
        ("ReadTimeout", C.TIMEOUT),
        ("RemoteProtocolError", C.TRANSIENT),
        ("ServerDisconnectedError", C.TRANSIENT),
        ("ClientConnectorError", C.TRANSIENT),
        ("AuthenticationError", C.AUTH),
        ("PermissionDeniedError", C.AUTH),
        ("BadRequestError", C.PERMANENT),
        ("NotFoundError", C.PERMANENT),
    ],
)
def test_sdk_names_without_importing_sdks(name, expected):
    assert classify_error(_named(name)) is expected


def test_sdk_name_found_along_the_mro_and_status_wins():
    base = type("APIStatusError", (Exception,), {})
    sub = type("MyProxyError", (base,), {})
    assert classify_error(sub("x")) is C.UNKNOWN
    rate = type("RateLimitError", (base,), {})
    assert classify_error(type("Custom", (rate,), {})("x")) is C.RATE_LIMIT
    # A status on the exception is more precise than its class name.
    assert classify_error(_named("APIError", status_code=503)) is C.TRANSIENT
    assert classify_error(_named("InternalServerError", status_code=400)) is C.PERMANENT


def test_wrapped_errors_are_classified_by_their_cause():
    try:
        try:
            raise ConnectionResetError("peer reset")
        except ConnectionResetError as inner:
            raise RuntimeError("request failed") from inner
    except RuntimeError as outer:
        assert classify_error(outer) is C.TRANSIENT
    assert classify_error(urllib.error.URLError(TimeoutError("timed out"))) is C.TIMEOUT


def test_retry_after_seconds_date_ms_and_attribute():
    now = 1_700_000_000.0
    assert retry_after(_WithResponse(429, {"Retry-After": "7"}), now=now) == 7.0
    assert retry_after(_WithResponse(429, {"retry-after": "1.5"}), now=now) == 1.5
    assert retry_after(_WithResponse(429, {"retry-after-ms": "250"}), now=now) == 0.25
    date = formatdate(now + 30, usegmt=True)
    assert retry_after(_WithResponse(503, {"Retry-After": date}), now=now) == pytest.approx(30, abs=1)
    past = formatdate(now - 30, usegmt=True)
    assert retry_after(_WithResponse(503, {"Retry-After": past}), now=now) == 0.0
    assert retry_after(_named("RateLimitError", retry_after=3)) == 3.0
    assert retry_after(_WithResponse(503, {"Retry-After": "soon"}), now=now) is None
    assert retry_after(ValueError()) is None


# ---- real HTTP clients against the real fault server


def _urllib_error(url: str, timeout: float = 5) -> BaseException:
    try:
        urllib.request.urlopen(url, timeout=timeout).read()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def test_urllib_errors_from_the_fault_server(fault_server):
    base = fault_server.url
    exc = _urllib_error(base + "?do=503")
    assert classify_error(exc) is C.TRANSIENT and http_status(exc) == 503
    exc = _urllib_error(base + "?do=429:4")
    assert classify_error(exc) is C.RATE_LIMIT and retry_after(exc) == 4.0
    exc = _urllib_error(base + "?do=429:date:20")
    assert 15 <= (retry_after(exc) or 0) <= 21
    assert classify_error(_urllib_error(base + "?do=404")) is C.PERMANENT
    assert classify_error(_urllib_error(base + "?do=401")) is C.AUTH
    assert is_transient(_urllib_error(base + "?do=reset"))
    assert is_transient(_urllib_error(base + "?do=close"))
    assert classify_error(_urllib_error(base + "?do=hang:3", timeout=0.3)) is C.TIMEOUT
    port = fault_server.port
    fault_server.close()
    assert classify_error(_urllib_error(f"http://127.0.0.1:{port}/api")) is C.TRANSIENT  # refused


def test_httpx_and_requests_errors_from_the_fault_server(fault_server):
    httpx = pytest.importorskip("httpx")
    requests = pytest.importorskip("requests")
    base = fault_server.url
    with httpx.Client(timeout=0.3) as client:
        resp = client.get(base + "?do=503")
        with pytest.raises(httpx.HTTPStatusError) as info:
            resp.raise_for_status()
        assert classify_error(info.value) is C.TRANSIENT
        with pytest.raises(httpx.ReadTimeout) as timeout:
            client.get(base + "?do=hang:3")
        assert classify_error(timeout.value) is C.TIMEOUT
        with pytest.raises(httpx.HTTPError) as reset:
            client.get(base + "?do=reset")
        assert is_transient(reset.value)
    resp = requests.get(base + "?do=429:2", timeout=2)
    with pytest.raises(requests.HTTPError) as rate:
        resp.raise_for_status()
    assert classify_error(rate.value) is C.RATE_LIMIT and retry_after(rate.value) == 2.0
    with pytest.raises(requests.ConnectionError) as conn:
        requests.get(base + "?do=reset", timeout=2)
    assert is_transient(conn.value)
    with pytest.raises(requests.Timeout) as slow:
        requests.get(base + "?do=hang:3", timeout=0.3)
    assert classify_error(slow.value) is C.TIMEOUT


def test_category_is_a_string():
    assert classify_error(TimeoutError()) == "timeout"
    assert str(C.RATE_LIMIT) == "rate_limit"
