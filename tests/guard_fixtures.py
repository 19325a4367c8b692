"""Fixtures of the resilience tests: the fault server and a clean resilience state."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from fault_server import FaultServer
from kernel_harness import REPO, CellResult


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A real fault-injecting HTTP server on a free loopback port."""
    server = FaultServer()
    yield server
    server.close()


@pytest.fixture
def no_waits() -> Iterator[None]:
    """Retry and rate-limit waits off, each decorator's attempt count kept."""
    from sci_ext.core.resilience import testing

    with testing(attempts=None):
        yield


def run_and_interrupt(kernel, code: str, marker: str, timeout: float = 60):
    """Run ``code`` in ``kernel``; send SIGINT once ``marker`` shows up in its output.

    Returns the :class:`CellResult` of the interrupted cell.
    """
    interrupted = False

    def watch(res: CellResult) -> None:
        nonlocal interrupted
        if not interrupted and marker in res.stdout + res.stderr:
            interrupted = True
            kernel.interrupt()

    res = kernel.run(code, timeout=timeout, on_stream=watch)
    res.interrupted = interrupted  # type: ignore[attr-defined]
    return res


_BREAKER_PROCESS = textwrap.dedent(
    """
    import sys
    from sci_ext.core.errors import TransientError, CircuitOpenError
    from sci_ext.core.resilience import CircuitBreaker
    mode, name, show_store = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    breaker = CircuitBreaker(name, fail_max=2, reset_timeout=60)
    if show_store:
        print("store:", breaker.store.description)
    if mode == "trip":
        for _ in range(2):
            try:
                breaker.call(lambda: (_ for _ in ()).throw(TransientError("down")))
            except TransientError:
                pass
    try:
        breaker.call(lambda: None)
        print("closed")
    except CircuitOpenError as exc:
        print("refused:", exc)
    """
)


def run_breaker_process(mode: str, name: str, env: dict[str, str] | None = None, show_store: bool = False) -> str:
    """In a fresh Python process: ``trip`` breaker ``name`` (fail_max 2) or just ``look``,
    then try one call; stdout says ``closed`` or ``refused: <reason>``."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", _BREAKER_PROCESS, mode, name, "1" if show_store else "0"],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO,
        check=True,
    ).stdout
