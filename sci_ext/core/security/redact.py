"""Replace secret values by ``[REDACTED:NAME]`` in text, streams, messages and logs.

One process-wide :class:`Redactor` knows every secret value loaded into this
process (by :func:`get_redactor`).  It redacts whole strings (:meth:`Redactor.redact`),
nested JSON-like data (:meth:`Redactor.redact_data`) and streams whose writes may
split a value in two (:class:`StreamRedactor` holds back a tail that could be the
start of a value until the next write or the end of the cell).

Besides the value itself, the forms a value takes in common renderings are
redacted too: its ``repr``/JSON escaping and its HTML escaping.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MIN_REDACT_LENGTH",
    "Redactor",
    "StreamRedactor",
    "get_redactor",
    "install_log_redaction",
    "uninstall_log_redaction",
]

#: Values shorter than this are not redacted: replacing "ab" everywhere would wreck output.
MIN_REDACT_LENGTH = 4

log = logging.getLogger(__name__)


def _variants(value: str) -> set[str]:
    """The value and the escaped forms it takes in reprs, JSON and HTML."""
    forms = {value, html.escape(value, quote=True), html.escape(value, quote=False)}
    forms.add(json.dumps(value)[1:-1])
    forms.add(repr(value)[1:-1])
    return {f for f in forms if len(f) >= MIN_REDACT_LENGTH}


class Redactor:
    """A thread-safe set of secret values and the names they are shown as."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._names: dict[str, str] = {}  # form of a value -> secret name
        self._pattern: re.Pattern[str] | None = None
        self._max_len = 0

    def add(self, name: str, value: str) -> bool:
        """Redact ``value`` as ``[REDACTED:name]`` from now on; False if it is too short."""
        if len(value) < MIN_REDACT_LENGTH:
            return False
        with self._lock:
            for form in _variants(value):
                self._names[form] = name
            self._rebuild()
        return True

    def remove(self, name: str) -> None:
        """Stop redacting the values registered under ``name``."""
        with self._lock:
            self._names = {form: n for form, n in self._names.items() if n != name}
            self._rebuild()

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._names.clear()
            self._rebuild()

    def names(self) -> set[str]:
        """The names of the secrets being redacted."""
        with self._lock:
            return set(self._names.values())

    def __bool__(self) -> bool:
        return self._pattern is not None

    def _rebuild(self) -> None:
        forms = sorted(self._names, key=len, reverse=True)  # longest first: no partial leftovers
        self._pattern = re.compile("|".join(map(re.escape, forms))) if forms else None
        self._max_len = len(forms[0]) if forms else 0

    def redact(self, text: str) -> str:
        """``text`` with every known value replaced by ``[REDACTED:NAME]``."""
        pattern = self._pattern
        if pattern is None or not text:
            return text
        names = self._names
        return pattern.sub(lambda m: f"[REDACTED:{names.get(m.group(0), '?')}]", text)

    def redact_data(self, data: Any) -> Any:
        """Redact every string inside nested dicts, lists and tuples (keys included)."""
        if self._pattern is None:
            return data
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {self.redact_data(k): self.redact_data(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return type(data)(self.redact_data(v) for v in data)
        return data

    def pending_prefix(self, text: str) -> int:
        """Length of the longest tail of ``text`` that is a proper prefix of a value.

        A stream holds that tail back: the next write may complete the value.
        """
        with self._lock:
            forms = list(self._names)
        best = 0
        for form in forms:
            for k in range(min(len(form) - 1, len(text)), best, -1):
                if text.endswith(form[:k]):
                    best = k
                    break
        return best


class StreamRedactor:
    """Redacts a stream of writes, holding back a tail that may start a value."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor or get_redactor()
        self._held = ""

    def feed(self, text: str) -> str:
        """Take the next write; return what can be emitted safely now."""
        if not self.redactor:
            out, self._held = self._held + text, ""
            return out
        buffer = self.redactor.redact(self._held + text)
        keep = self.redactor.pending_prefix(buffer)
        if keep:
            self._held = buffer[-keep:]
            return buffer[:-keep]
        self._held = ""
        return buffer

    def drain(self) -> str:
        """Everything held back (at the end of a cell: it cannot be completed any more)."""
        out, self._held = self._held, ""
        return out

    @property
    def holding(self) -> bool:
        """True when a tail is held back."""
        return bool(self._held)


_redactor = Redactor()


def get_redactor() -> Redactor:
    """The process-wide redactor."""
    return _redactor


# ----------------------------------------------------------------- logging
_factory_lock = threading.Lock()
_previous_factory: Any = None


def _redact_record(record: logging.LogRecord, redactor: Redactor) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to logging to report
        return
    clean = redactor.redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = redactor.redact(text)
    elif record.exc_text:
        record.exc_text = redactor.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)


def install_log_redaction(redactor: Redactor | None = None) -> None:
    """Redact every log record created in this process (message, traceback, stack).

    Installed as a log-record factory, so it covers every logger and handler,
    sci_ext's JSON log included, whatever handlers are added later.
    """
    global _previous_factory
    target = redactor or get_redactor()
    with _factory_lock:
        if _previous_factory is not None:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if target:
                _redact_record(record, target)
            return record

        factory.__sci_redacting__ = True  # type: ignore[attr-defined]
        _previous_factory = previous
        logging.setLogRecordFactory(factory)


def uninstall_log_redaction() -> None:
    """Undo :func:`install_log_redaction`."""
    global _previous_factory
    with _factory_lock:
        if _previous_factory is not None:
            logging.setLogRecordFactory(_previous_factory)
            _previous_factory = None


def redact_all(texts: Iterable[str]) -> list[str]:
    """Redact each of ``texts`` with the process-wide redactor."""
    return [_redactor.redact(t) for t in texts]
