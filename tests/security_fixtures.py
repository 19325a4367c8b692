"""Fixtures of the security tests: a fast KDF, a clean redactor, a fake OS keyring.

The OS keyring is the one thing mocked in these tests: no Secret Service or
Keychain runs here, so :class:`FakeKeyring` (an in-memory ``keyring`` backend,
installed with ``keyring.set_keyring``) stands in for it.
"""

from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TEST_PASSPHRASE = "correct horse battery staple"
FAST_KDF_N = 2**14  # the minimum sci_ext accepts; the default stays 2**17


@pytest.fixture
def fast_vault(sci_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Passphrase from the environment and the cheapest allowed scrypt cost."""
    from sci_ext.core.security import get_redactor, set_security_manager

    monkeypatch.setenv("SCI_EXT_VAULT_PASSPHRASE", TEST_PASSPHRASE)
    monkeypatch.setenv("SCI_EXT_SECURITY__KDF_N", str(FAST_KDF_N))
    set_security_manager(None)
    get_redactor().clear()
    yield sci_env
    set_security_manager(None)
    get_redactor().clear()
    os.environ.pop("SCI_EXT_TEST_EXPORTED", None)


class FakeKeyring:
    """An in-memory keyring backend standing in for the OS keyring (cannot run here)."""

    priority = 1

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def fake_keyring() -> Iterator[FakeKeyring]:
    """Install :class:`FakeKeyring` as the keyring backend for one test."""
    import keyring
    from keyring.backend import KeyringBackend

    class Backend(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self, fake: FakeKeyring) -> None:
            super().__init__()
            self.fake = fake

        def get_password(self, service: str, username: str) -> str | None:
            return self.fake.get_password(service, username)

        def set_password(self, service: str, username: str, password: str) -> None:
            self.fake.set_password(service, username, password)

        def delete_password(self, service: str, username: str) -> None:
            self.fake.delete_password(service, username)

    previous = keyring.get_keyring()
    fake = FakeKeyring()
    keyring.set_keyring(Backend(fake))
    yield fake
    keyring.set_keyring(previous)


def run_with_input(kernel: Any, code: str, answers: list[str], timeout: float = 60) -> dict[str, Any]:
    """Execute ``code`` with stdin allowed, answering each input request in turn.

    Returns the prompts seen, whether they were password prompts, and the iopub outputs.
    """
    kc = kernel.kc
    msg_id = kc.execute(code, store_history=True, allow_stdin=True)
    prompts: list[tuple[str, bool]] = []
    outputs: list[dict[str, Any]] = []
    pending = list(answers)
    deadline = time.monotonic() + timeout
    idle = False
    while not idle:
        if time.monotonic() > deadline:
            raise TimeoutError(code)
        try:
            req = kc.get_stdin_msg(timeout=0.05)
            prompts.append((req["content"]["prompt"], bool(req["content"].get("password"))))
            kc.input(pending.pop(0) if pending else "")
        except queue.Empty:
            pass
        while True:
            try:
                msg = kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                break
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
                break
            if msg["msg_type"] in ("stream", "display_data", "execute_result", "error"):
                outputs.append({"msg_type": msg["msg_type"], **msg["content"]})
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return {"prompts": prompts, "outputs": outputs, "reply": reply["content"]}


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    """Run ``python -m sci_ext ARGS`` in a subprocess with this checkout first on the path."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    full = {**os.environ, **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), full.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "sci_ext", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=120,
    )


def scan_for(value: str, *roots: Path) -> list[Path]:
    """Every file under ``roots`` whose bytes contain ``value``."""
    needle = value.encode()
    hits = []
    for root in roots:
        for path in root.rglob("*") if root.is_dir() else [root]:
            if path.is_file():
                try:
                    if needle in path.read_bytes():
                        hits.append(path)
                except OSError:
                    pass
    return hits


__all__ = ["FakeKeyring", "cli", "fake_keyring", "fast_vault", "run_with_input", "scan_for", "TEST_PASSPHRASE"]
