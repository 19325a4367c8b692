"""Review 2026-12-b R3 and R5: `jupyter sci health --url` sends the token only to the origin named, and reads it from a file."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sci_ext.cli import main
from sci_ext.cli.health_url import fetch_health, read_token_file

TOKEN = "tok-0123456789abcdef-r3"


class _Server:
    """A loopback HTTP server that records the Authorization header it saw and may redirect."""

    def __init__(self, host: str, location: str | None = None) -> None:
        seen: list[str] = []
        self.seen = seen
        self.location = location
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                seen.append(self.headers.get("Authorization") or "")
                if outer.location is not None and not self.path.startswith("/final"):
                    self.send_response(302)
                    self.send_header("Location", outer.location)
                    self.end_headers()
                    return
                body = json.dumps({"status": "ok", "checks": [], "version": "t"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = http.server.HTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[list[_Server]]:
    made: list[_Server] = []
    yield made
    for server in made:
        server.close()


@pytest.mark.parametrize("other_host", ["127.0.0.2", "127.0.0.1"])  # another host; the same host, another port
def test_token_is_dropped_on_a_cross_origin_redirect(servers: list[_Server], other_host: str) -> None:
    other = _Server(other_host)
    first = _Server("127.0.0.1", location=other.url + "/final/sci/health")
    servers += [other, first]
    code, body = fetch_health(first.url + "/sci/health", TOKEN)
    assert code == 200 and body["redirected_to"] == f"http://{other_host}"
    assert first.seen == [f"token {TOKEN}"] and other.seen == [""]


def test_token_is_kept_on_a_same_origin_redirect(servers: list[_Server]) -> None:
    server = _Server("127.0.0.1")
    server.location = server.url + "/final/sci/health"
    servers.append(server)
    code, body = fetch_health(server.url + "/sci/health", TOKEN)
    assert code == 200 and "redirected_to" not in body
    assert server.seen == [f"token {TOKEN}"] * 2


def test_cli_says_the_token_was_not_sent(servers: list[_Server], capsys, monkeypatch) -> None:
    other = _Server("127.0.0.2")
    first = _Server("127.0.0.1", location=other.url + "/final/sci/health")
    servers += [other, first]
    monkeypatch.setenv("SCI_EXT_TOKEN", TOKEN)
    assert main(["health", "--url", first.url]) == 0
    err = capsys.readouterr().err
    assert "another origin: the token was not sent there" in err and TOKEN not in err
    assert other.seen == [""]


def test_token_file(servers: list[_Server], tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("SCI_EXT_TOKEN", raising=False)
    monkeypatch.delenv("JUPYTER_TOKEN", raising=False)
    server = _Server("127.0.0.1")
    servers.append(server)
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n# comment lines after the first are ignored\n")
    assert main(["health", "--url", server.url, "--token-file", str(path)]) == 0
    assert server.seen == [f"token {TOKEN}"]
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    for bad, what in ((tmp_path / "missing", "cannot read it"), (tmp_path / "empty", "the file is empty")):
        if bad.name == "empty":
            bad.write_text("\n")
        with pytest.raises(ValueError, match=f"--token-file {bad}: {what}"):
            read_token_file(str(bad))
        assert main(["health", "--url", server.url, "--token-file", str(bad)]) == 2
        assert str(bad) in capsys.readouterr().err


def test_help_says_token_is_visible(capsys) -> None:
    try:
        assert main(["health", "--help"]) == 0
    except SystemExit as exc:
        assert exc.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--token-file" in text and "visible to other local users" in text
