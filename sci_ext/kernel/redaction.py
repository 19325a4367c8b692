"""Kernel hooks that keep secret values out of everything the frontend receives.

In an ipykernel every output (stdout, stderr, rich display data, execute results,
errors with their tracebacks, replies such as inspection tooltips) leaves through
one ``Session.send``.  :class:`SessionRedactor` wraps that method on the kernel's
session: string content is redacted, and stream text is passed through a
:class:`~sci_ext.core.security.redact.StreamRedactor` per (cell, stream) so a
value split across writes is caught; a held-back tail is sent before the next
non-stream output of the cell and when the kernel reports idle *for that cell*
(never at the status messages of control-channel requests).  Binary buffers
(widget values) are redacted as bytes.  What ipykernel echoes of file
descriptors 1 and 2 to the kernel process's own stdout/stderr (the server's log)
goes through :mod:`sci_ext.kernel.fd_echo`.

Outside a kernel (terminal IPython) :class:`RedactingStream` wraps ``sys.stdout``
and ``sys.stderr`` instead (tracebacks and displays are printed there).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from ..core.security.redact import Redactor, StreamRedactor
from .state import KernelState

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["RedactingStream", "SessionRedactor", "install", "register", "uninstall"]

_FLUSH_BEFORE = {"display_data", "update_display_data", "execute_result", "error", "clear_output"}
_CELL_REQUESTS = {"execute_request", "comm_msg"}
_SEND_ARGS = ("ident", "buffers", "track", "header", "metadata")


def _parent_header(parent: Any) -> dict[str, Any]:
    if not isinstance(parent, dict):
        return {}
    header = parent.get("header", parent)
    return dict(header) if isinstance(header, dict) else {}


class SessionRedactor:
    """Wraps ``session.send`` of an ipykernel so that no secret value is sent."""

    def __init__(self, session: Any, redactor: Redactor) -> None:
        self.session = session
        self.redactor = redactor
        self.original = session.send
        self._lock = threading.RLock()
        self._streams: dict[tuple[str, str], StreamRedactor] = {}
        self._iopub: Any = None
        self._parents: dict[str, dict[str, Any]] = {}
        self._busy: set[str] = set()
        self.redacted_messages = 0

    def install(self) -> None:
        """Replace ``session.send`` on the instance (every kernel component shares it)."""
        self.session.send = self.send

    def uninstall(self) -> None:
        """Restore the original method."""
        if self.session.__dict__.get("send") == self.send:
            del self.session.send

    def send(
        self, stream: Any, msg_or_type: Any, content: Any = None, parent: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        """``Session.send`` with secret values redacted."""
        if not self.redactor and not self._streams:
            return self.original(stream, msg_or_type, content, parent, *args, **kwargs)
        if isinstance(msg_or_type, dict):
            msg_type = msg_or_type.get("header", {}).get("msg_type") or msg_or_type.get("msg_type")
            body = msg_or_type.get("content")
            parent_header = _parent_header(msg_or_type.get("parent_header"))
        else:
            msg_type, body, parent_header = msg_or_type, content, _parent_header(parent)
        parent_id = str(parent_header.get("msg_id", ""))
        if msg_type == "stream" and isinstance(body, dict):
            with self._lock:
                self._iopub = stream
                self._parents[parent_id] = parent_header
                key = (parent_id, str(body.get("name", "stdout")))
                redactor = self._streams.get(key)
                if redactor is None:
                    redactor = self._streams[key] = StreamRedactor(self.redactor)
                text = redactor.feed(str(body.get("text", "")))
                if not redactor.holding:
                    del self._streams[key]
                if not text:
                    return None  # all of it held back until the rest arrives
                new_body: Any = {**body, "text": text}
        else:
            if msg_type == "status" and isinstance(body, dict):
                self._status(parent_id, str(parent_header.get("msg_type", "")), body.get("execution_state"))
            elif msg_type in _FLUSH_BEFORE:
                self._drain([parent_id])
            new_body = self.redactor.redact_data(body) if body is not None else body
        args, kwargs = self._redact_buffers(msg_or_type, args, kwargs)
        if new_body != body:
            self.redacted_messages += 1
        if isinstance(msg_or_type, dict):
            return self.original(stream, {**msg_or_type, "content": new_body}, content, parent, *args, **kwargs)
        return self.original(stream, msg_or_type, new_body, parent, *args, **kwargs)

    def _redact_buffers(self, msg: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Binary buffers (widget values, comm data) with the UTF-8 bytes of every value replaced."""
        named = dict(zip(_SEND_ARGS, args, strict=False))  # send(..., ident, buffers, ...)
        named.update(kwargs)
        buffers = named.get("buffers")
        if not buffers and isinstance(msg, dict):
            buffers = msg.get("buffers")
        if not buffers or not self.redactor:
            return args, kwargs
        clean = [self.redactor.redact_bytes(b) for b in buffers]
        if all(bytes(a) == b for a, b in zip(buffers, clean, strict=True)):
            return args, kwargs
        self.redacted_messages += 1
        named["buffers"] = clean
        return (), named

    def _status(self, parent_id: str, parent_type: str, state: Any) -> None:
        """Release held-back tails only at the end of the cell's OWN output.

        ``busy``/``idle`` of control-channel requests (kernel_info, interrupt,
        debug, usage) arrive while a cell runs: they must not release the tail of
        a value the cell is still writing.  At the idle of an execute (or comm)
        request, the tails of that request and of requests already finished (late
        output of their background threads) are sent.
        """
        with self._lock:
            if state == "busy":
                self._busy.add(parent_id)
                return
            if state != "idle":
                return
            self._busy.discard(parent_id)
            ids = [parent_id]
            if parent_type in _CELL_REQUESTS:
                ids += [pid for pid, _ in self._streams if pid not in self._busy and pid != parent_id]
        self._drain(ids)

    def _drain(self, parent_ids: list[str]) -> None:
        """Send what the streams of the given requests hold back."""
        wanted = set(parent_ids)
        with self._lock:
            keys = [k for k in self._streams if k[0] in wanted]
            pending = [(k[0], k[1], self._streams.pop(k).drain()) for k in keys]
            iopub = self._iopub
            headers = {pid: self._parents.get(pid, {}) for pid, _, _ in pending}
            live = {k[0] for k in self._streams}
            self._parents = {pid: h for pid, h in self._parents.items() if pid in live}
        for pid, name, text in pending:
            if text and iopub is not None:
                msg = self.session.msg("stream", {"name": name, "text": text})
                msg["parent_header"] = headers[pid]
                self.original(iopub, msg, ident=f"stream.{name}".encode())


class RedactingStream:
    """A text stream proxy that redacts writes (values split across writes too)."""

    def __init__(self, wrapped: Any, redactor: Redactor) -> None:
        self._wrapped = wrapped
        self._redactor = StreamRedactor(redactor)
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Write ``text`` with secret values replaced."""
        with self._lock:
            out = self._redactor.feed(text)
        if out:
            self._wrapped.write(out)
        return len(text)

    def writelines(self, lines: Any) -> None:
        """Write each line."""
        for line in lines:
            self.write(line)

    def drain(self) -> None:
        """Write whatever is held back (end of a cell)."""
        with self._lock:
            out = self._redactor.drain()
        if out:
            self._wrapped.write(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


def install(ipython: InteractiveShell, redactor: Redactor) -> Any:
    """Install the right hooks on ``ipython``; return an undo function."""
    kernel = getattr(ipython, "kernel", None)
    session = getattr(kernel, "session", None)
    if session is not None:
        from . import fd_echo

        hook = SessionRedactor(session, redactor)
        hook.install()
        undo_echo = fd_echo.install(redactor)

        def undo_kernel() -> None:
            undo_echo()
            hook.uninstall()

        return undo_kernel
    out, err = RedactingStream(sys.stdout, redactor), RedactingStream(sys.stderr, redactor)
    previous = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err

    def drain(*_: Any) -> None:
        out.drain()
        err.drain()

    ipython.events.register("post_run_cell", drain)

    def undo() -> None:
        ipython.events.unregister("post_run_cell", drain)
        drain()
        if sys.stdout is out and sys.stderr is err:
            sys.stdout, sys.stderr = previous

    return undo


def uninstall(undo: Any) -> None:
    """Run the undo function :func:`install` returned."""
    undo()


def register(ipython: Any, state: KernelState) -> None:
    """Redact outputs and log records from the first cell on (undone by ``%unload_ext``).

    Light by design (``%load_ext`` runs it): the redactor is empty until a secret
    is read, and an empty redactor passes every message through after one check.
    """
    from ..core.security.redact import get_redactor, install_log_redaction, uninstall_log_redaction

    redactor = get_redactor()
    state.on_close(install(ipython, redactor))
    install_log_redaction(redactor)
    state.on_close(uninstall_log_redaction)
