"""Fixtures of the resilience tests: the fault server and a clean resilience state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fault_server import FaultServer
from kernel_harness import CellResult


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
