"""A real ``jupyter server`` subprocess with sci_ext, and a kernel driven over its websocket.

Used by the integration tests and ``benchmarks/bench_server.py``.  Everything the
server writes (config, data, runtime, IPython dirs) is under one scratch directory;
``core.state_dir`` follows the caller's ``XDG_STATE_HOME``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpResult:
    """Status, headers and body of one request."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def http(
    url: str, *, headers: dict[str, str] | None = None, method: str = "GET", body: bytes | None = None
) -> HttpResult:
    """One HTTP request (errors are results, not exceptions)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return HttpResult(response.status, response.read(), {k.lower(): v for k, v in response.headers.items()})
    except urllib.error.HTTPError as exc:
        return HttpResult(exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()})


#: ``python SERVER_MAIN jupyter_server ...`` (or ``jupyterlab``) is ``python -m jupyter_server ...``
#: without start-up costs no test needs (see the module): every test Jupyter server starts so.
SERVER_MAIN = str(Path(__file__).with_name("sci_test_server_main.py"))


class LiveServer:
    """``python -m jupyter_server`` on a free loopback port, with sci_ext enabled."""

    def __init__(self, scratch: Path, env: dict[str, str] | None = None, sci_options: dict[str, Any] | None = None):
        self.scratch = scratch
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        dirs = {name: scratch / name for name in ("config", "data", "runtime", "ipython", "root")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        config = {
            "ServerApp": {"jpserver_extensions": {"sci_ext": True}},
            "SciExt": {"sampling_interval": 0.5, **(sci_options or {})},
        }
        (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(config))
        self.env = dict(os.environ if env is None else env)
        self.env.update(
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            IPYTHONDIR=str(dirs["ipython"]),
            JUPYTER_PLATFORM_DIRS="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), self.env.get("PYTHONPATH", "")])),
        )
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log_path = scratch / "server.log"
        self.root = dirs["root"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> LiveServer:
        """Start the server and wait until ``/api/status`` answers."""
        cmd = [
            sys.executable,
            SERVER_MAIN,
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/api/status").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"jupyter server did not answer in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """The server's output so far."""
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    @property
    def auth(self) -> dict[str, str]:
        """The Jupyter token header."""
        return {"Authorization": f"token {self.token}"}

    def get(self, path: str, headers: dict[str, str] | None = None, auth: bool = True) -> HttpResult:
        """GET ``path`` (with the Jupyter token unless ``auth=False`` or ``headers`` has Authorization)."""
        merged = dict(self.auth if auth else {})
        merged.update(headers or {})
        return http(self.base + path, headers=merged)

    def start_kernel(self, name: str = "python3") -> str:
        """Start a kernel through the REST API; returns its id."""
        result = http(
            self.base + "/api/kernels",
            method="POST",
            body=json.dumps({"name": name}).encode(),
            headers={**self.auth, "Content-Type": "application/json"},
        )
        assert result.status == 201, result.text
        return str(result.json()["id"])

    def kernel(self, kernel_id: str) -> KernelSocket:
        """A websocket client to the kernel."""
        return KernelSocket(f"ws://127.0.0.1:{self.port}/api/kernels/{kernel_id}/channels", self.token)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL), with its kernels."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                http(self.base + "/api/shutdown", method="POST", headers=self.auth, body=b"")
                self.proc.wait(15)
            except Exception:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        if getattr(self, "_log", None) is not None:
            self._log.close()


class KernelSocket:
    """Execute cells over the kernel's websocket (the JSON wire protocol jupyter_server speaks)."""

    def __init__(self, url: str, token: str) -> None:
        import websocket

        self.ws = websocket.create_connection(url, header=[f"Authorization: token {token}"], timeout=120)
        self.session = uuid.uuid4().hex

    def execute(self, code: str, timeout: float = 120) -> dict[str, Any]:
        """Run ``code``; returns ``{"status", "stdout", "error", "execution_count"}``."""
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "username": "test",
                "session": self.session,
                "msg_type": "execute_request",
                "version": "5.3",
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False, "store_history": True, "allow_stdin": False},
            "channel": "shell",
            "buffers": [],
        }
        self.ws.send(json.dumps(message))
        out: dict[str, Any] = {"status": None, "stdout": "", "error": None, "execution_count": None}
        idle = False
        deadline = time.monotonic() + timeout
        while not (idle and out["status"] is not None):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell did not finish: {code[:60]!r}")
            reply = json.loads(self.ws.recv())
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = reply["msg_type"], reply["content"]
            if kind == "stream":
                out["stdout"] += content.get("text", "")
            elif kind == "error":
                out["error"] = content
            elif kind == "execute_reply":
                out["status"] = content["status"]
                out["execution_count"] = content.get("execution_count")
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        return out

    def close(self) -> None:
        """Close the websocket."""
        self.ws.close()
