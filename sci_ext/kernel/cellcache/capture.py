"""Record a cell's outputs while they still appear live, and replay them later.

Unlike IPython's ``capture_output`` (which hides everything until the cell
ends, as ipycache does), :class:`LiveCapture` *tees*: ``sys.stdout`` and
``sys.stderr`` writes and every display message go to the frontend at once and
are also appended, in order, to :attr:`LiveCapture.events`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LiveCapture", "replay"]

#: One recorded output: ("stream", name, text) | ("display", data, metadata, kwargs) | ("clear", wait)
#: | ("result",): where the cell's result was shown (before the figures the inline backend draws)
Event = tuple[Any, ...]

_MISSING = object()


class _Tee:
    """A stream that writes through to ``target`` and records what was written."""

    def __init__(self, target: Any, name: str, record: Callable[[str, str], None]) -> None:
        self._target = target
        self._name = name
        self._record = record

    def write(self, text: str) -> int:
        self._record(self._name, text)
        result: int = self._target.write(text)
        return result

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target, attr)


class LiveCapture:
    """Context manager: tee stdout, stderr and the shell's display publisher."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._saved: dict[str, Any] = {}
        self._own: dict[str, Any] = {}

    def _stream(self, name: str, text: str) -> None:
        if not text:
            return
        with self._lock:
            last = self.events[-1] if self.events else None
            if last is not None and last[0] == "stream" and last[1] == name:
                self.events[-1] = ("stream", name, last[2] + text)
            else:
                self.events.append(("stream", name, text))

    def record_display(self, data: dict[str, Any], metadata: dict[str, Any] | None, **kwargs: Any) -> None:
        """Record one display message (also used for the cell's result)."""
        keep = {k: v for k, v in kwargs.items() if k in ("transient", "update") and v}
        with self._lock:
            self.events.append(("display", dict(data), dict(metadata or {}), keep))

    def __enter__(self) -> LiveCapture:
        pub = self.shell.display_pub
        self._saved = {"stdout": sys.stdout, "stderr": sys.stderr}
        # Another feature (output redaction) may have wrapped these on the instance: put those back.
        self._own = {attr: vars(pub).get(attr, _MISSING) for attr in ("publish", "clear_output")}
        original_publish = pub.publish
        original_clear = getattr(pub, "clear_output", None)

        def publish(data: dict[str, Any], metadata: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
            self.record_display(data, metadata, **kwargs)
            return original_publish(data, metadata, *args, **kwargs)

        def clear_output(wait: bool = False) -> Any:
            with self._lock:
                self.events.append(("clear", wait))
            return original_clear(wait) if original_clear is not None else None

        pub.publish = publish
        if original_clear is not None:
            pub.clear_output = clear_output
        sys.stdout = _Tee(sys.stdout, "stdout", self._stream)
        sys.stderr = _Tee(sys.stderr, "stderr", self._stream)
        return self

    def __exit__(self, *exc: object) -> None:
        pub = self.shell.display_pub
        sys.stdout = self._saved["stdout"]
        sys.stderr = self._saved["stderr"]
        for attr, previous in self._own.items():
            if previous is _MISSING:
                vars(pub).pop(attr, None)  # the class's method shows through again
            else:
                setattr(pub, attr, previous)


def replay(shell: Any, events: list[Event], show_result: Callable[[], None] | None = None) -> None:
    """Show recorded outputs again, in their original order (``show_result`` at the result's place)."""
    pub = shell.display_pub
    for event in events:
        kind = event[0]
        if kind == "result":
            if show_result is not None:
                sys.stdout.flush()
                sys.stderr.flush()
                show_result()
        elif kind == "stream":
            stream = sys.stdout if event[1] == "stdout" else sys.stderr
            stream.write(event[2])
            stream.flush()
        elif kind == "display":
            _, data, metadata, kwargs = event
            sys.stdout.flush()
            sys.stderr.flush()
            pub.publish(data, metadata, **kwargs)
        elif kind == "clear":
            clear = getattr(pub, "clear_output", None)
            if clear is not None:
                clear(event[1])
