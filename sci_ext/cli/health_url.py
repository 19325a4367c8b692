"""``jupyter sci health --url URL``: ask a running Jupyter server's ``/sci/health``.

The URL is the server's (``http://127.0.0.1:8888/`` or with a base URL) or the full
``.../sci/health``.  The token comes from ``--token-file``, else ``--token``, else
``SCI_EXT_TOKEN``, else ``JUPYTER_TOKEN`` (sent as ``Authorization: token ...``; never
printed).  ``--token`` is visible to other local users (``ps``) while the command starts:
the value is overwritten in ``/proc/PID/cmdline`` at once (:mod:`.argv_scrub`), but the
file or the environment never show it at all.

Redirects (review 2026-12-b R3): the token is sent only to the origin (scheme, host,
port) the user named.  A redirect to another origin is followed without it, and a
refusal after such a redirect says so.

Exit 0 when the server says ok or degraded, 1 when failing, unreachable or refusing the
token, 2 for a URL that is not http(s) or an unreadable token file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["add_url_arguments", "fetch_health", "health_endpoint", "read_token_file", "run_url"]

TOKEN_VARS = ("SCI_EXT_TOKEN", "JUPYTER_TOKEN")


def add_url_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--token`` and ``--http-timeout`` on the ``health`` verb."""
    parser.add_argument("--url", metavar="URL", help="ask this Jupyter server's /sci/health instead of checking here")
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="Jupyter token; visible to other local users (ps, /proc) while the command starts: "
        "prefer --token-file or $SCI_EXT_TOKEN (default: $SCI_EXT_TOKEN, $JUPYTER_TOKEN)",
    )
    parser.add_argument("--token-file", metavar="PATH", help="read the Jupyter token from this file (first line)")
    parser.add_argument("--http-timeout", type=float, default=10.0, metavar="SECONDS", help="with --url (default 10)")


def health_endpoint(url: str) -> str:
    """``url`` made into the ``/sci/health`` URL of that server (ValueError for a non-http URL)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--url must be an http(s) URL of a Jupyter server, got {url!r}")
    path = parts.path or "/"
    if not path.rstrip("/").endswith("/sci/health"):
        path = path.rstrip("/") + "/sci/health"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class _SameOriginAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects; keep ``Authorization`` only while the origin stays the one the user named."""

    def __init__(self, origin: tuple[str, str, int | None]) -> None:
        self.origin = origin
        self.dropped_for: str | None = None

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:  # noqa: PLR0917 - urllib signature
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None:
            return None
        auth = req.unredirected_hdrs.get("Authorization")
        if auth is not None:
            if _origin(new.full_url) == self.origin:
                new.add_unredirected_header("Authorization", auth)
            else:
                self.dropped_for = "{}://{}".format(*_origin(new.full_url)[:2])
        return new


def fetch_health(url: str, token: str | None, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON body)`` of ``GET url`` (OSError when unreachable).

    The token goes only to ``url``'s origin: on a redirect elsewhere it is dropped and the
    body gets ``"redirected_to"`` (the other origin) so a refusal can say why.
    """
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    if token:
        # unredirected: urllib would otherwise copy it to whatever host a 30x names
        request.add_unredirected_header("Authorization", f"token {token}")
    redirects = _SameOriginAuth(_origin(url))
    opener = urllib.request.build_opener(redirects)
    try:
        with opener.open(request, timeout=timeout) as response:  # nosec B310  # scheme checked in health_endpoint
            code, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        code, raw = exc.code, exc.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {"message": raw[:200].decode("utf-8", "replace")}
    body = body if isinstance(body, dict) else {"message": str(body)[:200]}
    if redirects.dropped_for:
        body["redirected_to"] = redirects.dropped_for
    return code, body


def read_token_file(path: str) -> str:
    """The first line of ``path``, stripped (ValueError naming the file when unreadable or empty)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            token = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--token-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if not token:
        raise ValueError(f"--token-file {path}: the file is empty (put the Jupyter token on its first line)")
    return token


def _table(report: dict[str, Any]) -> str:
    lines = [f"sci_ext health ({report.get('version', '?')}): {report.get('status', '?')}"]
    for check in report.get("checks", []):
        lines.append(f"  {check.get('name', '?'):<14} {check.get('status', '?'):<9} {check.get('detail', '')}")
    return "\n".join(lines)


def run_url(args: argparse.Namespace) -> int:
    """The ``--url`` form of ``jupyter sci health``."""
    from . import CheckFailure, UsageFailure

    try:
        url = health_endpoint(args.url)
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None
    token: str | None
    if getattr(args, "token_file", None):
        try:
            token = read_token_file(args.token_file)
        except ValueError as exc:
            raise UsageFailure(str(exc)) from None
    else:
        token = args.token or next((os.environ[v] for v in TOKEN_VARS if os.environ.get(v)), None)
    try:
        code, body = fetch_health(url, token, args.http_timeout)
    except OSError as exc:
        raise CheckFailure(f"{url} is unreachable: {getattr(exc, 'reason', exc)}") from None
    redirected = body.pop("redirected_to", None)
    if redirected and token:
        print(f"note: {url} redirected to {redirected}, another origin: the token was not sent there", file=sys.stderr)
    if code in (401, 403):
        hint = "pass --token-file or set SCI_EXT_TOKEN" if not token else "the token was refused"
        if token and redirected:
            hint = f"redirected to {redirected}, another origin: the token was not sent there"
        raise CheckFailure(f"{url} answered HTTP {code} ({body.get('message', '')}): {hint}")
    if "status" not in body:
        raise CheckFailure(f"{url} answered HTTP {code} without a health report")
    print(json.dumps(body, indent=2) if getattr(args, "json", False) else _table(body))
    return 1 if body["status"] == "failing" or code >= 500 else 0
