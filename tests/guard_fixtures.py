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


def run_and_interrupt(kernel, code: str, marker: str, timeout: float = 60):
    """Run ``code`` in ``kernel``; send SIGINT once ``marker`` shows up in its output.

    Returns the :class:`CellResult` of the interrupted cell.
    """
    import queue
    import time as _time

    from kernel_harness import CellResult

    msg_id = kernel.kc.execute(code, store_history=True, allow_stdin=False)
    res = CellResult()
    interrupted = False
    deadline = _time.monotonic() + timeout
    while True:
        remaining = deadline - _time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"cell did not finish in {timeout}s")
        try:
            msg = kernel.kc.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text = content["text"]
            if content["name"] == "stdout":
                res.stdout += text
            else:
                res.stderr += text
            res.outputs.append({"type": "stream", "name": content["name"], "text": text})
            if not interrupted and marker in res.stdout + res.stderr:
                interrupted = True
                kernel.interrupt()
        elif kind == "error":
            res.error = content
            res.outputs.append({"type": "error", **content})
        elif kind == "status" and content["execution_state"] == "idle":
            break
    res.interrupted = interrupted  # type: ignore[attr-defined]
    return res
