"""Helpers for the server-extension tests: pytest-jupyter's fixtures, in-module only.

pytest-jupyter's plugin takes over every coroutine test (its own loop), which
would clash with pytest-asyncio elsewhere in the suite; so the fixtures are
imported into the server test modules only and those tests are plain functions
that drive the server's loop with ``run``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPClientError


def fetch(loop: Any, jp_fetch: Any, *parts: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """GET ``parts`` under the base URL: ``(status, body text, response)`` (errors included)."""
    try:
        response = loop.run_until_complete(jp_fetch(*parts, headers=headers, raise_error=False))
    except HTTPClientError as exc:  # pragma: no cover - raise_error=False returns instead
        response = exc.response
    body = response.body.decode("utf-8", "replace") if response.body else ""
    return response.code, body, response


def json_body(text: str) -> Any:
    """The JSON of a response body."""
    return json.loads(text)


def promtool_check(text: str) -> str:
    """Run ``promtool check metrics`` on ``text``; returns its output (empty when clean)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed (Debian package prometheus; .ci/run installs it)"
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"promtool check metrics failed: {proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr
