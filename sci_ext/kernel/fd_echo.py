"""Redact what ipykernel echoes of file descriptors 1 and 2 to the kernel process's own output.

ipykernel 7 (``OutStream`` with ``watchfd``) points fds 1 and 2 at a pipe; a
thread reads it, sends the text to the frontend (redacted by the session hook)
and writes the raw bytes to a copy of the original descriptor
(``_original_stdstream_copy``), which is what the Jupyter server (or whatever
started the kernel) logs.  ``os.write(1, ...)``, subprocesses, C extensions and
``print(file=sys.__stdout__)`` all take that path, so without this module a secret
value reaches the server log in clear.

:class:`EchoRedactor` puts one more pipe in front of that copy: the descriptor
number ipykernel writes to now feeds a thread that redacts the stream (values
split across writes too: a tail that may start a value is held back up to
``hold_seconds``) and writes the result to the real destination.  Without fd
watching the same pipe goes in front of fds 1 and 2 themselves.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import sys
import threading
from typing import Any

from ..core.security.redact import Redactor, StreamRedactor

__all__ = ["EchoRedactor", "install"]


class EchoRedactor:
    """Redacts everything written to descriptor ``fd`` before it reaches where ``fd`` pointed."""

    def __init__(self, fd: int, redactor: Redactor, hold_seconds: float = 0.5) -> None:
        self.fd = fd
        self.redactor = redactor
        self.hold_seconds = hold_seconds
        self._real: int | None = None
        self._read: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Interpose the redacting pipe in front of ``fd``."""
        self._real = os.dup(self.fd)
        read, write = os.pipe()
        os.dup2(write, self.fd)
        os.close(write)
        self._read = read
        self._thread = threading.Thread(target=self._pump, name=f"sci_ext-echo-redact-{self.fd}", daemon=True)
        self._thread.start()

    def _write(self, text: str) -> None:
        if not text or self._real is None:
            return
        data = text.encode("utf-8", "replace")
        while data:
            try:
                written = os.write(self._real, data)
            except OSError:
                return  # the real destination is gone (server stopped): nothing to protect
            data = data[written:]

    def _pump(self) -> None:
        assert self._read is not None  # nosec B101  # set by start()
        stream = StreamRedactor(self.redactor)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            timeout = self.hold_seconds if stream.holding else None
            try:
                ready, _, _ = select.select([self._read], [], [], timeout)
            except (OSError, ValueError):
                break
            if not ready:
                self._write(stream.drain())  # nothing completed the held tail in time
                continue
            try:
                data = os.read(self._read, 65536)
            except OSError:
                break
            if not data:
                break
            try:
                out = stream.feed(decoder.decode(data))
            except Exception:  # never stop reading (writers would block on a full pipe), never pass raw text
                out, stream = "[sci_ext: output dropped: redaction failed]\n", StreamRedactor(self.redactor)
            self._write(out)
        try:
            self._write(stream.feed(decoder.decode(b"", final=True)) + stream.drain())
        except Exception:
            return

    def stop(self) -> None:
        """Point ``fd`` back at the real destination and stop the thread."""
        if self._real is None:
            return
        os.dup2(self._real, self.fd)  # closes our pipe's write end: the thread sees EOF
        if self._thread is not None:
            self._thread.join(timeout=2)
        os.close(self._real)
        self._real = None
        if self._read is not None:
            with contextlib.suppress(OSError):
                os.close(self._read)
            self._read = None


def _echo_fds() -> list[int]:
    """The descriptors the kernel process's own stdout/stderr output goes through.

    With fd watching (ipykernel on Linux/macOS), the copy of the original
    descriptor ipykernel echoes to (``_original_stdstream_copy``); without it (no
    watching: Windows, or ``PYTEST_CURRENT_TEST`` set), fds 1 and 2 themselves,
    which then lead straight to the server's log.
    """
    if os.name != "posix":  # select() on pipes: POSIX only
        return []
    fds = []
    for name in ("stdout", "stderr"):
        stream: Any = getattr(sys, name, None)
        if type(stream).__name__ != "OutStream":
            continue  # not an ipykernel stream: terminal IPython is handled by RedactingStream
        fd = getattr(stream, "_original_stdstream_copy", None)
        if isinstance(fd, int) and getattr(stream, "_should_watch", False):
            fds.append(fd)
            continue
        original = getattr(sys, f"__{name}__", None)
        try:
            fds.append(original.fileno())  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):
            continue
    return fds


def install(redactor: Redactor) -> Any:
    """Redact the kernel process's echo of fds 1/2; return an undo function (a no-op outside ipykernel)."""
    echoes = []
    for fd in _echo_fds():
        echo = EchoRedactor(fd, redactor)
        try:
            echo.start()
        except OSError:
            continue
        echoes.append(echo)

    def undo() -> None:
        for echo in echoes:
            echo.stop()

    return undo
