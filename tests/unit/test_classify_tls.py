"""Certificate and TLS failures are permanent, from every client, however they are wrapped.

Real errors from real TLS endpoints (``tls_server.py``): an HTTPS server whose
self-signed certificate the client does not trust, one whose certificate names
another host, and a port that drops the connection during the handshake (the only
TLS failure that is a network blip, so transient).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tls_server import HandshakeDropServer, TLSServer

from sci_ext.core.resilience import ErrorCategory, classify_error, retry_with_backoff

C = ErrorCategory


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    directory = tmp_path_factory.mktemp("tls")
    untrusted, wrong_host, drop = TLSServer(directory), TLSServer(directory, "example.invalid"), HandshakeDropServer()
    yield {"untrusted": untrusted, "wrong_host": wrong_host, "drop": drop}
    for server in (untrusted, wrong_host, drop):
        server.close()


def _raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except Exception as exc:  # the error under test
        return exc
    raise AssertionError("no error raised")


def _context(server: object) -> ssl.SSLContext:
    """A context trusting ``server``'s certificate (so only the host name is wrong)."""
    return ssl.create_default_context(cafile=str(server.cafile))  # type: ignore[attr-defined]


def _stdlib(url: str, context: ssl.SSLContext | None) -> object:
    return urllib.request.urlopen(url, timeout=5, context=context)  # noqa: S310  # nosec B310


def _requests(url: str, context: ssl.SSLContext | None, cafile: Path | None) -> object:
    import requests

    return requests.get(url, timeout=5, verify=str(cafile) if cafile else True)


def _httpx(url: str, context: ssl.SSLContext | None) -> object:
    import httpx

    return httpx.get(url, timeout=5, verify=context or True)


def _urllib3(url: str, cafile: Path | None) -> object:
    import urllib3

    return urllib3.PoolManager(retries=False, ca_certs=str(cafile) if cafile else None).request("GET", url, timeout=5)


def _aiohttp(url: str, context: ssl.SSLContext | None) -> object:
    import aiohttp

    async def get() -> None:
        async with aiohttp.ClientSession() as session, session.get(url, ssl=context or True) as response:
            await response.read()

    return asyncio.run(get())


def _openai(url: str) -> object:
    import openai

    return openai.OpenAI(base_url=url + "v1", api_key="sk-test", max_retries=0, timeout=5).models.list()


@pytest.mark.parametrize("case", ["untrusted", "wrong_host"])
def test_stdlib_ssl_and_urllib(endpoints, case):
    server = endpoints[case]
    context = _context(server) if case == "wrong_host" else None
    exc = _raised(lambda: _stdlib(server.url, context))
    assert isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, ssl.SSLCertVerificationError)
    assert classify_error(exc.reason) is C.PERMANENT  # ssl.SSLCertVerificationError itself
    assert classify_error(exc) is C.PERMANENT  # and wrapped by urllib


@pytest.mark.parametrize("case", ["untrusted", "wrong_host"])
def test_requests_ssl_error(endpoints, case):
    import requests

    server = endpoints[case]
    exc = _raised(lambda: _requests(server.url, None, server.cafile if case == "wrong_host" else None))
    assert type(exc) is requests.exceptions.SSLError  # a subclass of requests' ConnectionError
    assert classify_error(exc) is C.PERMANENT


@pytest.mark.parametrize("case", ["untrusted", "wrong_host"])
def test_httpx_connect_error_caused_by_a_certificate(endpoints, case):
    import httpx

    server = endpoints[case]
    exc = _raised(lambda: _httpx(server.url, _context(server) if case == "wrong_host" else None))
    assert type(exc) is httpx.ConnectError
    assert classify_error(exc) is C.PERMANENT


@pytest.mark.parametrize("case", ["untrusted", "wrong_host"])
def test_urllib3_ssl_error(endpoints, case):
    import urllib3

    server = endpoints[case]
    exc = _raised(lambda: _urllib3(server.url, server.cafile if case == "wrong_host" else None))
    assert type(exc) is urllib3.exceptions.SSLError
    assert classify_error(exc) is C.PERMANENT


@pytest.mark.parametrize("case", ["untrusted", "wrong_host"])
def test_aiohttp_certificate_error(endpoints, case):
    import aiohttp

    server = endpoints[case]
    exc = _raised(lambda: _aiohttp(server.url, _context(server) if case == "wrong_host" else None))
    assert isinstance(exc, aiohttp.ClientConnectorCertificateError)
    assert isinstance(exc, aiohttp.ClientSSLError)
    assert classify_error(exc) is C.PERMANENT


def test_openai_connection_error_caused_by_a_certificate(endpoints):
    import openai

    exc = _raised(lambda: _openai(endpoints["untrusted"].url))
    assert type(exc) is openai.APIConnectionError
    assert classify_error(exc) is C.PERMANENT


@pytest.mark.parametrize(
    "name",
    [
        "ClientSSLError",
        "ClientConnectorSSLError",
        "ServerFingerprintMismatch",
        "ServerCertificateError",
        "CertificateError",
    ],
)
def test_tls_class_names_without_the_library(name):
    """Names matched without importing the client (as for the other SDK names)."""
    exc = type(name, (Exception,), {})("tls handshake failed")
    assert classify_error(exc) is C.PERMANENT


def test_other_tls_failures_are_permanent_and_a_wrapped_message_is_enough():
    wrong_version = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    assert classify_error(wrong_version) is C.PERMANENT  # https:// on an http port: no retry fixes it
    # An SDK that stringified the cause away (litellm-style) still names the certificate.
    api_error = type("APIConnectionError", (Exception,), {})
    assert classify_error(api_error("certificate verify failed: unable to get local issuer certificate")) is C.PERMANENT
    assert classify_error(api_error("Connection error: [SSL: CERTIFICATE_VERIFY_FAILED]")) is C.PERMANENT
    assert classify_error(api_error("Connection error.")) is C.TRANSIENT  # no certificate: still a blip


@pytest.mark.parametrize("client", ["urllib", "requests", "httpx", "urllib3", "aiohttp", "openai"])
def test_a_handshake_cut_short_by_the_network_stays_transient(endpoints, client):
    url = endpoints["drop"].url
    calls = {
        "urllib": lambda: _stdlib(url, None),
        "requests": lambda: _requests(url, None, None),
        "httpx": lambda: _httpx(url, None),
        "urllib3": lambda: _urllib3(url, None),
        "aiohttp": lambda: _aiohttp(url, None),
        "openai": lambda: _openai(url),
    }
    exc = _raised(calls[client])
    assert classify_error(exc) is C.TRANSIENT, repr(exc)


def test_retry_with_backoff_does_not_retry_a_certificate_failure(endpoints):
    import requests

    attempts = []

    @retry_with_backoff(max_attempts=4, initial_wait=0)
    def fetch() -> object:
        attempts.append(1)
        return _requests(endpoints["untrusted"].url, None, None)

    with pytest.raises(requests.exceptions.SSLError):
        fetch()
    assert len(attempts) == 1
