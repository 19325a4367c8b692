"""The run context every feature can read: which cell, which kernel, which correlation id.

A neutral module (no telemetry, no IPython): the kernel binds a context when a cell
starts (IPython ``pre_run_cell``) and resets it when the cell ends; features put
``current()`` into the events they emit, and telemetry, LLM accounting and the status
API read it from there.  :mod:`contextvars` carries it into asyncio tasks by itself;
threads get it through :func:`run_in_context` / :func:`wrap` (or
``contextvars.copy_context().run``), as structlog's contextvars pattern does.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

__all__ = [
    "RunContext",
    "bind",
    "current",
    "new_correlation_id",
    "process_context",
    "reset",
    "run_in_context",
    "set_process_context",
    "using",
    "wrap",
]

T = TypeVar("T")


@dataclass(frozen=True)
class RunContext:
    """What is running now: ``correlation_id`` is ``None`` outside a cell run."""

    correlation_id: str | None = None
    kernel_id: str | None = None
    execution_count: int | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (``extra`` flattened in)."""
        out: dict[str, Any] = {
            "correlation_id": self.correlation_id,
            "kernel_id": self.kernel_id,
            "execution_count": self.execution_count,
        }
        out.update(self.extra)
        return out


def _kernel_id_from_env() -> str | None:
    # Set by sci_ext's server extension for kernels it launches; else the connection file name.
    return os.environ.get("SCI_EXT_KERNEL_ID") or None


_process = RunContext(kernel_id=_kernel_id_from_env())
_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("sci_ext_run_context", default=None)


def new_correlation_id() -> str:
    """A fresh correlation id: 32 hex digits (a random UUID4 without dashes).

    Built from ``os.urandom`` as :func:`uuid.uuid4` does, without importing :mod:`uuid`
    (which imports :mod:`platform`: a few ms of ``%load_ext`` in a terminal IPython).
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def process_context() -> RunContext:
    """The context outside any cell (kernel id only)."""
    return _process


def set_process_context(**fields: Any) -> None:
    """Set process-wide fields (``kernel_id``) seen by every later :func:`current`."""
    global _process
    _process = replace(_process, **fields)


def current() -> RunContext:
    """The context of the running cell or task, else the process context."""
    ctx = _current.get()
    return _process if ctx is None else ctx


def bind(correlation_id: str | None = None, execution_count: int | None = None, **extra: str) -> contextvars.Token:
    """Start a run (a cell): returns the token :func:`reset` needs."""
    # A direct constructor call, not dataclasses.replace: this runs once per cell.
    ctx = RunContext(
        correlation_id or new_correlation_id(),
        _process.kernel_id,
        execution_count,
        tuple(sorted(extra.items())) if extra else _process.extra,
    )
    return _current.set(ctx)


def reset(token: contextvars.Token) -> None:
    """End the run started by :func:`bind` (a token from another context is ignored)."""
    try:
        _current.reset(token)
    except ValueError:
        _current.set(None)  # reset from another context (IPython runs post_run_cell elsewhere)


@contextmanager
def using(correlation_id: str | None = None, **fields: Any) -> Iterator[RunContext]:
    """``with using(): ...`` runs a block as one run with its own correlation id."""
    token = bind(correlation_id, **fields)
    try:
        yield current()
    finally:
        reset(token)


def run_in_context(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``func`` in a copy of the caller's context (for a thread started by the caller)."""
    return contextvars.copy_context().run(func, *args, **kwargs)


def wrap(func: Callable[..., T]) -> Callable[..., T]:
    """``func`` bound to the caller's current context, for ``Thread(target=wrap(f))``."""
    ctx = contextvars.copy_context()

    def bound(*args: Any, **kwargs: Any) -> T:
        return ctx.run(func, *args, **kwargs)

    return bound
