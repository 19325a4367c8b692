"""``jupyter sci health --url URL``: ask a running Jupyter server's ``/sci/health``.

The URL is the server's (``http://127.0.0.1:8888/`` or with a base URL) or the full
``.../sci/health``.  The token comes from ``--token``, else ``SCI_EXT_TOKEN``, else
``JUPYTER_TOKEN`` (sent as ``Authorization: token ...``; never printed).  Exit 0 when
the server says ok or degraded, 1 when failing, unreachable or refusing the token,
2 for a URL that is not http(s).
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["add_url_arguments", "fetch_health", "health_endpoint", "run_url"]

TOKEN_VARS = ("SCI_EXT_TOKEN", "JUPYTER_TOKEN")


def add_url_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--token`` and ``--http-timeout`` on the ``health`` verb."""
    parser.add_argument("--url", metavar="URL", help="ask this Jupyter server's /sci/health instead of checking here")
    parser.add_argument("--token", metavar="TOKEN", help="Jupyter token (default: $SCI_EXT_TOKEN, $JUPYTER_TOKEN)")
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


def fetch_health(url: str, token: str | None, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON body)`` of ``GET url`` (OSError when unreachable)."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked in health_endpoint
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310
            code, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        code, raw = exc.code, exc.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {"message": raw[:200].decode("utf-8", "replace")}
    return code, body if isinstance(body, dict) else {"message": str(body)[:200]}


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
    token = args.token or next((os.environ[v] for v in TOKEN_VARS if os.environ.get(v)), None)
    try:
        code, body = fetch_health(url, token, args.http_timeout)
    except OSError as exc:
        raise CheckFailure(f"{url} is unreachable: {getattr(exc, 'reason', exc)}") from None
    if code in (401, 403):
        hint = "pass --token or set SCI_EXT_TOKEN" if not token else "the token was refused"
        raise CheckFailure(f"{url} answered HTTP {code} ({body.get('message', '')}): {hint}")
    if "status" not in body:
        raise CheckFailure(f"{url} answered HTTP {code} without a health report")
    print(json.dumps(body, indent=2) if getattr(args, "json", False) else _table(body))
    return 1 if body["status"] == "failing" or code >= 500 else 0
