"""Shared fixtures: an isolated sci_ext environment, real kernels, a real Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from guard_fixtures import *  # noqa: F403
from kernel_harness import REPO, KernelSession, kernel_env
from security_fixtures import *  # noqa: F403
from telemetry_fixtures import *  # noqa: F403

ISOLATED_VARS = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")


@pytest.fixture(autouse=True)
def sci_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Every test gets its own XDG directories, project directory and config manager."""
    from sci_ext.core.config import set_config_manager

    dirs = {var: tmp_path / "xdg" / var.lower() for var in ISOLATED_VARS}
    for var, path in dirs.items():
        path.mkdir(parents=True)
        monkeypatch.setenv(var, str(path))
    for var in list(os.environ):
        if var.startswith("SCI_EXT_"):
            monkeypatch.delenv(var)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    set_config_manager(None)
    yield {"project": project, **{k: Path(v) for k, v in dirs.items()}}
    set_config_manager(None)


@pytest.fixture
def kernel_factory(sci_env: dict[str, Path]) -> Iterator[Callable[..., KernelSession]]:
    """Start real kernels (``factory(env=..., cwd=...)``); all are stopped afterwards."""
    started: list[KernelSession] = []

    def start(env: dict[str, str] | None = None, cwd: Path | None = None, load_extension: bool = True) -> KernelSession:
        full = kernel_env({**os.environ, **(env or {})})
        session = KernelSession(full, cwd or sci_env["project"], load_extension=load_extension)
        started.append(session)
        return session

    yield start
    for session in started:
        session.close()


@pytest.fixture
def kernel(kernel_factory: Callable[..., KernelSession]) -> KernelSession:
    """A real IPython kernel with ``%load_ext sci_ext`` already run."""
    return kernel_factory()


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real ``redis-server`` on a free loopback port, persistence off."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server); .ci/run installs it")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        """Stop the server (tests use this to simulate Redis going down)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh real Redis server for one test."""
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built once per test run (``pip wheel --no-deps --no-build-isolation``).

    The packaging tests of the server extension and of the labextension both read it.
    """
    import sys

    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = out.glob("sci_ext-*.whl")
    return wheel
