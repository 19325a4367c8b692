"""A real HTTP server that fails on command, for resilience tests.

Each request to any path takes the next action from a script (``server.script(...)``)
or, when the script is empty, the default action (``ok``).  A ``?do=ACTION`` query
parameter overrides both.  Actions:

``ok``              200 with a small JSON body
``<status>``        that status (e.g. ``503``, ``500``, ``404``, ``401``)
``429:<s>``         429 with ``Retry-After: <s>`` seconds
``429:date:<s>``    429 with ``Retry-After`` as an HTTP date ``<s>`` seconds ahead
``reset``           reset the TCP connection (RST) without a response
``close``           close the connection without a response
``hang:<s>``        wait ``<s>`` seconds, then 200 (past a client's read timeout)

``python tests/fault_server.py`` runs one in the foreground and prints its URL.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet tests
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._serve()

    def _serve(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        action = query["do"][0] if "do" in query else self.server.owner.next_action()
        self.server.owner.record(self.path, action)
        kind, _, arg = action.partition(":")
        if kind == "ok":
            self._send(200, {"ok": True, "hit": self.server.owner.hits})
        elif kind == "reset":
            # SO_LINGER 0 makes close() send RST: the client sees ConnectionResetError.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif kind == "close":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif kind == "hang":
            self.server.owner.stopping.wait(float(arg or 30))
            self._send(200, {"ok": True, "late": True})
        elif kind == "429":
            headers = {}
            if arg.startswith("date:"):
                headers["Retry-After"] = formatdate(time.time() + float(arg[5:]), usegmt=True)
            elif arg:
                headers["Retry-After"] = arg
            self._send(429, {"error": "rate limited"}, headers)
        else:
            self._send(int(kind), {"error": f"status {kind}"})

    def _send(self, status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the connection was reset on purpose


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FaultServer


class FaultServer:
    """A fault-injecting HTTP server on a free loopback port (``.url``)."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.default = "ok"
        self.stopping = threading.Event()
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-server", daemon=True)
        self._thread.start()

    @property
    def hits(self) -> int:
        """Requests served so far."""
        return len(self.requests)

    def script(self, *actions: str, default: str | None = None) -> FaultServer:
        """Answer the next requests with ``actions``, then with ``default``."""
        with self._lock:
            self._script = deque(actions)
            if default is not None:
                self.default = default
        return self

    def next_action(self) -> str:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def record(self, path: str, action: str) -> None:
        with self._lock:
            self.requests.append((path, action))

    def close(self) -> None:
        """Stop serving (hanging requests are released)."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":
    server = FaultServer()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.close()
