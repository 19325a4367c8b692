"""A candidate Jupyter server started on a new config slot, probed, then stopped.

The candidate runs ``python -m jupyter_server`` on a loopback port the system picks (port 0:
a port chosen beforehand can be taken by another process before the server binds it) with
``SCI_EXT_CONFIG_FILE`` pointing at the slot (so it reads the new config as its user
file), its own runtime directory and a one-time token.  It passes when
``/sci/health`` answers 200 (``ok`` or ``degraded``; ``failing`` answers 503) and
``/sci/metrics`` is valid Prometheus text: ``promtool check metrics`` when promtool is
installed, else prometheus_client's parser.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess  # nosec B404  # the candidate server and promtool: fixed argv, no shell
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.trust import create_private_file, private_temp_dir

__all__ = ["CandidateError", "CandidateResult", "probe_candidate", "running_candidate"]


class CandidateError(Exception):
    """The candidate did not start or did not pass its checks (the message says which)."""


@dataclass
class CandidateResult:
    """What the candidate answered."""

    url: str
    health: dict[str, Any]
    metrics_families: int
    metrics_checker: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def _bound_port(runtime: Path, pid: int) -> int | None:
    """The port the candidate listens on, from the server file it writes once listening
    (``jpserver-<pid>.json`` in its runtime directory, our private one); None until then."""
    try:
        return int(json.loads((runtime / f"jpserver-{pid}.json").read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _get(url: str, token: str, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@contextlib.contextmanager
def running_candidate(slot: Path, *, startup_timeout: float = 90.0) -> Iterator[tuple[str, str]]:
    """Start a candidate server on ``slot``; yields ``(base_url, token)``; always stops it."""
    token = secrets.token_hex(16)
    workdir = private_temp_dir("sci_ext-candidate-")
    env = dict(os.environ)
    env.update(
        SCI_EXT_CONFIG_FILE=str(slot),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={workdir}",
        "--ServerApp.jpserver_extensions=sci_ext=True",
    ]
    if hasattr(os, "getuid") and os.getuid() == 0:
        cmd.append("--allow-root")
    log_path = workdir / "server.log"
    with os.fdopen(create_private_file(log_path, what="candidate server log"), "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)  # nosec B603  # our own argv
    base = ""
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise CandidateError(f"candidate server exited with status {proc.returncode}: {' | '.join(tail)}")
            if not base and (port := _bound_port(workdir / "runtime", proc.pid)):
                base = f"http://127.0.0.1:{port}"
            if base:
                try:
                    status, _ = _get(f"{base}/api/status", token, timeout=2)
                    if status == 200:
                        break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise CandidateError(f"candidate server did not answer within {startup_timeout:.0f} s")
            time.sleep(0.2)
        yield base, token
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def check_metrics_text(text: str) -> tuple[int, str]:
    """Validate Prometheus text; returns ``(families, checker)`` or raises :class:`CandidateError`."""
    promtool = shutil.which("promtool")
    if promtool:
        result = subprocess.run(  # nosec B603  # promtool, fixed argv
            [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60, check=False
        )
        if result.returncode != 0:
            problem = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()
            raise CandidateError(f"/sci/metrics failed promtool check metrics: {problem[0] if problem else '?'}")
        checker = "promtool"
    else:
        checker = "prometheus_client parser"
    from prometheus_client.parser import text_string_to_metric_families

    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise CandidateError(f"/sci/metrics is not valid Prometheus text: {exc}") from None
    if not families:
        raise CandidateError("/sci/metrics answered no metrics")
    return len(families), checker


def probe_candidate(
    slot: Path, *, startup_timeout: float = 90.0, progress: Callable[[str], None] | None = None
) -> CandidateResult:
    """Start a candidate on ``slot``, require health and metrics, stop it."""
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    with running_candidate(slot, startup_timeout=startup_timeout) as (base, token):
        say(f"candidate server up at {base} ({time.monotonic() - started:.1f} s)")
        status, body = _get(f"{base}/sci/health", token)
        if status == 404:
            raise CandidateError("candidate has no /sci/health: the sci_ext server extension is not enabled")
        try:
            health = json.loads(body)
        except ValueError:
            raise CandidateError(f"/sci/health answered {status} with no JSON") from None
        if status != 200 or health.get("status") == "failing":
            failing = [
                f"{c.get('name')}: {c.get('detail')}" for c in health.get("checks", []) if c.get("status") == "failing"
            ]
            raise CandidateError(f"candidate health is {health.get('status')!r}: {'; '.join(failing) or status}")
        status, body = _get(f"{base}/sci/metrics", token)
        if status != 200:
            raise CandidateError(f"/sci/metrics answered HTTP {status}")
        families, checker = check_metrics_text(body.decode("utf-8", errors="replace"))
        notes = [
            f"{c.get('name')} is {c.get('status')}: {c.get('detail')}"
            for c in health.get("checks", [])
            if c.get("status") != "ok"
        ]
        return CandidateResult(base, health, families, checker, time.monotonic() - started, notes)
