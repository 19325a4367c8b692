"""`jupyter sci secret ...` and `jupyter sci apikey ...` in subprocesses."""

from __future__ import annotations

import json

import pytest
from security_fixtures import cli, scan_for

VALUE = "sk-cli-value-0123456789"


def test_secret_set_reads_stdin_never_argv(fast_vault) -> None:
    res = cli("secret", "set", "OPENAI_API_KEY", stdin=VALUE + "\n")
    assert res.returncode == 0, res.stderr
    assert "stored OPENAI_API_KEY" in res.stdout and VALUE not in res.stdout + res.stderr
    listed = cli("secret", "list")
    assert listed.returncode == 0 and "OPENAI_API_KEY" in listed.stdout and VALUE not in listed.stdout
    as_json = json.loads(cli("secret", "list", "--json").stdout)
    assert [e["name"] for e in as_json] == ["OPENAI_API_KEY"]
    from sci_ext.core.security import get_security_manager

    assert get_security_manager().get_secret("OPENAI_API_KEY") == VALUE
    # there is no way to pass the value as an argument
    extra = cli("secret", "set", "OPENAI_API_KEY", VALUE)
    assert extra.returncode == 2 and "unrecognized arguments" in extra.stderr
    assert scan_for(VALUE, fast_vault["XDG_DATA_HOME"], fast_vault["XDG_STATE_HOME"]) == []


def test_secret_set_errors(fast_vault) -> None:
    empty = cli("secret", "set", "K", stdin="")
    assert empty.returncode == 2 and "empty value" in empty.stderr
    bad = cli("secret", "set", "bad name", stdin="x\n")
    assert bad.returncode == 2 and "invalid secret name" in bad.stderr
    wrong = cli("secret", "set", "K", stdin="abcd-efgh\n", env={"SCI_EXT_VAULT_PASSPHRASE": "first"})
    assert wrong.returncode == 0
    denied = cli("secret", "list", env={"SCI_EXT_VAULT_PASSPHRASE": "other"})
    assert denied.returncode == 0  # listing names needs no key
    denied = cli("secret", "set", "K2", stdin="abcd-efgh\n", env={"SCI_EXT_VAULT_PASSPHRASE": "other"})
    assert denied.returncode == 1 and "AuthenticationError: cannot unlock" in denied.stderr
    assert denied.stderr.count("\n") == 1


def test_secret_delete_and_rotate(fast_vault) -> None:
    assert cli("secret", "set", "A", stdin="value-a-123\n").returncode == 0
    assert cli("secret", "set", "B", stdin="value-b-123\n").returncode == 0
    rotated = cli("secret", "rotate")
    assert rotated.returncode == 0 and "2 secret(s) re-encrypted" in rotated.stdout, rotated.stderr
    new = cli("secret", "rotate", "--new-passphrase", stdin="brand new passphrase\n")
    assert new.returncode == 0, new.stderr
    old = cli("secret", "delete", "A")
    assert old.returncode == 1 and "cannot unlock" in old.stderr
    env = {"SCI_EXT_VAULT_PASSPHRASE": "brand new passphrase"}
    deleted = cli("secret", "delete", "A", env=env)
    assert deleted.returncode == 0 and "deleted A" in deleted.stdout
    missing = cli("secret", "delete", "A", env=env)
    assert missing.returncode == 1 and "no secret named 'A'" in missing.stderr


def test_apikey_create_list_revoke(fast_vault) -> None:
    created = cli("apikey", "create", "prometheus", "--scope", "metrics:read", "--ttl", "3600")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("sci_") and "cannot be shown again" in created.stderr
    listed = cli("apikey", "list")
    key_id = token.split("_")[1]
    assert key_id in listed.stdout and "prometheus" in listed.stdout and token.split("_", 2)[2] not in listed.stdout
    data = json.loads(cli("apikey", "list", "--json").stdout)
    assert data[0]["id"] == key_id and data[0]["scopes"] == ["metrics:read"] and data[0]["expires"]
    from sci_ext.core.security import get_security_manager

    assert get_security_manager().validate_api_key(token).name == "prometheus"
    bad = cli("apikey", "create", "x", "--scope", "Not A Scope")
    assert bad.returncode == 2 and "invalid scope" in bad.stderr
    revoked = cli("apikey", "revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    again = cli("apikey", "revoke", key_id)
    assert again.returncode == 1 and "no API key" in again.stderr
    assert cli("apikey", "list", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize("argv", [["secret"], ["apikey", "frob"], ["audit"]])
def test_bad_usage_exits_2(fast_vault, argv) -> None:
    assert cli(*argv).returncode == 2


def test_in_process_cli_main(fast_vault, capsys, monkeypatch) -> None:
    """The same handlers in-process (counted by coverage)."""
    import io

    from sci_ext.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("in-process-value-1\n"))
    assert main(["secret", "set", "INPROC"]) == 0
    assert main(["secret", "list"]) == 0
    assert main(["secret", "list", "--json"]) == 0
    assert main(["apikey", "create", "p"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["apikey", "list"]) == 0
    assert main(["apikey", "list", "--json"]) == 0
    assert main(["apikey", "revoke", token.split("_")[1]]) == 0
    assert main(["secret", "rotate"]) == 0
    assert main(["secret", "delete", "INPROC"]) == 0
    assert main(["secret", "delete", "INPROC"]) == 1
    assert main(["audit", "verify"]) == 0
    assert main(["audit", "show"]) == 0
    out = capsys.readouterr()
    assert "in-process-value-1" not in out.out + out.err


def _pty_run(
    argv: list[str], env: dict[str, str], answers: dict[bytes, bytes], timeout: float = 60
) -> tuple[int, bytes]:
    """Run ``argv`` on a real pseudo-terminal, answering prompts; return (status, everything shown)."""
    import os
    import pty
    import select
    import sys
    import time

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, [sys.executable, *argv], env)
    shown = b""
    pending = dict(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        for prompt in list(pending):
            if shown.endswith(prompt) or shown.rstrip().endswith(prompt.rstrip()):
                os.write(fd, pending.pop(prompt) + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown


def test_set_on_a_terminal_uses_hidden_prompts(fast_vault) -> None:
    """The real getpass on a pseudo-terminal: value and passphrase are never echoed."""
    import os
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "SCI_EXT_VAULT_PASSPHRASE"}
    env["PYTHONPATH"] = str(repo)
    status, shown = _pty_run(
        ["-m", "sci_ext", "secret", "set", "TTY_KEY"],
        env,
        {
            b"Value of TTY_KEY: ": VALUE.encode(),
            b"New vault passphrase: ": b"typed on a terminal",
            b"Repeat the passphrase: ": b"typed on a terminal",
        },
    )
    assert status == 0, shown
    assert b"stored TTY_KEY" in shown
    assert VALUE.encode() not in shown and b"typed on a terminal" not in shown
    from sci_ext.core.security import Vault

    os.environ["SCI_EXT_VAULT_PASSPHRASE"] = "typed on a terminal"
    assert Vault(fast_vault["XDG_DATA_HOME"] / "sci_ext" / "vault.json").get("TTY_KEY") == VALUE
