"""Fixtures of the resilience tests: the fault server and a clean resilience state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fault_server import FaultServer


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
