"""Replace secret values by ``[REDACTED:NAME]`` in text, streams, messages and logs.

One process-wide :class:`Redactor` knows every secret value loaded into this
process (by :func:`get_redactor`).  It redacts whole strings (:meth:`Redactor.redact`),
nested JSON-like data (:meth:`Redactor.redact_data`), binary buffers
(:meth:`Redactor.redact_bytes`) and streams whose writes may split a value in two
(:class:`StreamRedactor` holds back a tail that could be the start of a value until
the next write or the end of the cell).

Besides the value itself, the forms a value takes in common renderings are
redacted too: its ``repr``/JSON escaping, its HTML escaping and its URL encoding
(``urllib.parse.quote``/``quote_plus``).  Displays that shorten a value (pandas,
``%whos``, ``%xmode Verbose``, messages cut to a length) show a *prefix* or a
*suffix* of it: a prefix or suffix of at least :func:`partial_min_length`
characters (12, or half of a value shorter than 24 characters, never under 6) is
redacted as well.  Text is always redacted first and shortened after
(:func:`shorten`).
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import threading
import urllib.parse
from typing import Any

__all__ = [
    "MIN_REDACT_LENGTH",
    "PARTIAL_MIN_LENGTH",
    "Redactor",
    "StreamRedactor",
    "get_redactor",
    "install_log_redaction",
    "partial_min_length",
    "shorten",
    "uninstall_log_redaction",
]

#: Values shorter than this are not redacted: replacing "ab" everywhere would wreck output.
MIN_REDACT_LENGTH = 4
#: A prefix or suffix of a value this long (or longer) is redacted like the value.
PARTIAL_MIN_LENGTH = 12
_PARTIAL_FLOOR = 6

log = logging.getLogger(__name__)


def partial_min_length(length: int) -> int:
    """The shortest prefix/suffix of a ``length``-character value that is redacted.

    12 characters, or half the value when it is shorter than 24 characters, but
    never fewer than 6 (shorter fragments would match ordinary words).  What is
    left visible of a value is then at most 11 characters from one of its ends
    (for a 24+ character key: its public vendor prefix and a few characters).
    """
    return min(PARTIAL_MIN_LENGTH, max(_PARTIAL_FLOOR, math.ceil(length / 2)))


def _variants(value: str) -> set[str]:
    """The value and the escaped forms it takes in reprs, JSON, HTML and URLs."""
    forms = {value, html.escape(value, quote=True), html.escape(value, quote=False)}
    forms.add(json.dumps(value)[1:-1])
    forms.add(repr(value)[1:-1])
    forms.add(urllib.parse.quote(value, safe=""))
    forms.add(urllib.parse.quote(value))
    forms.add(urllib.parse.quote_plus(value))
    return {f for f in forms if len(f) >= MIN_REDACT_LENGTH}


class _Table:
    """Compiled patterns for one alphabet (text, or bytes seen as latin-1 text)."""

    def __init__(self, forms: dict[str, tuple[str, int]]) -> None:
        # forms: form -> (name, partial minimum length)
        ordered = sorted(forms, key=len, reverse=True)  # longest first: no partial leftovers
        self.names = {f: n for f, (n, _) in forms.items()}
        self.full = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self.prefixes: dict[str, list[tuple[str, str]]] = {}
        self.suffixes: dict[str, list[tuple[str, str]]] = {}
        for form, (name, k) in forms.items():
            if len(form) <= k:
                continue
            self.prefixes.setdefault(form[:k], []).append((form, name))
            self.suffixes.setdefault(form[-k:], []).append((form, name))
        anchors = sorted(set(self.prefixes) | set(self.suffixes), key=len, reverse=True)
        self.anchors = re.compile("|".join(map(re.escape, anchors))) if anchors else None

    def redact(self, text: str) -> str:
        if self.full is None:
            return text
        names = self.names
        text = self.full.sub(lambda m: f"[REDACTED:{names.get(m.group(0), '?')}]", text)
        return self._partials(text) if self.anchors is not None else text

    def _partials(self, text: str) -> str:
        assert self.anchors is not None  # nosec B101  # checked by the caller
        out: list[str] = []
        last = pos = 0
        while True:
            match = self.anchors.search(text, pos)
            if match is None:
                break
            start, end = match.span()
            anchor = match.group(0)
            name = ""
            best_start, best_end = start, end
            for form, form_name in self.prefixes.get(anchor, ()):
                rest, j = form[len(anchor) :], 0
                while j < len(rest) and end + j < len(text) and text[end + j] == rest[j]:
                    j += 1
                if not name or end + j > best_end:
                    best_end, name = end + j, form_name
            for form, form_name in self.suffixes.get(anchor, ()):
                head, j = form[: -len(anchor)], 0
                while j < len(head) and start - 1 - j >= last and text[start - 1 - j] == head[-1 - j]:
                    j += 1
                if not name or start - j < best_start:
                    best_start, name = start - j, form_name
            out.append(text[last:best_start])
            out.append(f"[REDACTED:{name}]")
            last = pos = best_end
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)


class Redactor:
    """A thread-safe set of secret values and the names they are shown as."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._names: dict[str, str] = {}  # form of a value -> secret name
        self._partial: dict[str, int] = {}  # form -> shortest redacted prefix/suffix
        self._text = _Table({})
        self._bytes = _Table({})
        self._pattern: re.Pattern[str] | None = None
        self._max_len = 0

    def add(self, name: str, value: str) -> bool:
        """Redact ``value`` as ``[REDACTED:name]`` from now on; False if it is too short."""
        if len(value) < MIN_REDACT_LENGTH:
            return False
        k = partial_min_length(len(value))
        with self._lock:
            for form in _variants(value):
                self._names[form] = name
                self._partial[form] = k
            self._rebuild()
        return True

    def remove(self, name: str) -> None:
        """Stop redacting the values registered under ``name``."""
        with self._lock:
            self._names = {form: n for form, n in self._names.items() if n != name}
            self._partial = {form: k for form, k in self._partial.items() if form in self._names}
            self._rebuild()

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._names.clear()
            self._partial.clear()
            self._rebuild()

    def names(self) -> set[str]:
        """The names of the secrets being redacted."""
        with self._lock:
            return set(self._names.values())

    def __bool__(self) -> bool:
        return self._pattern is not None

    def _rebuild(self) -> None:
        forms = {f: (n, self._partial.get(f, PARTIAL_MIN_LENGTH)) for f, n in self._names.items()}
        self._text = _Table(forms)
        as_bytes: dict[str, tuple[str, int]] = {}
        for form, (name, k) in forms.items():
            raw = form.encode("utf-8")
            # the shortest redacted fragment in bytes: k characters take at least k bytes
            as_bytes[raw.decode("latin-1")] = (name, max(k, len(raw) - (len(form) - k)))
        self._bytes = _Table(as_bytes)
        self._pattern = self._text.full
        self._max_len = max(map(len, forms), default=0)

    def redact(self, text: str) -> str:
        """``text`` with every known value (and long prefix/suffix) replaced by ``[REDACTED:NAME]``."""
        if self._pattern is None or not text:
            return text
        return self._text.redact(text)

    def redact_bytes(self, data: bytes | bytearray | memoryview) -> bytes:
        """``data`` (e.g. a widget's binary buffer) with the UTF-8 forms of every value replaced."""
        raw = bytes(data)
        if self._pattern is None or not raw:
            return raw
        return self._bytes.redact(raw.decode("latin-1")).encode("latin-1", "replace")

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


def shorten(text: str, limit: int, redactor: Redactor | None = None, ellipsis: str = "...") -> str:
    """``text`` redacted, THEN cut to ``limit`` characters (cutting first could leave most of a value)."""
    clean = (redactor or _redactor).redact(text)
    if len(clean) <= limit:
        return clean
    return clean[: max(limit - len(ellipsis), 0)] + ellipsis


class StreamRedactor:
    """Redacts a stream of writes, holding back a tail that may start a value."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor or get_redactor()
        self._held = ""  # raw text (never sent yet) that may be the start of a value

    def feed(self, text: str) -> str:
        """Take the next write; return what can be emitted safely now."""
        if not self.redactor:
            out, self._held = self._held + text, ""
            return out
        buffer = self._held + text
        keep = self.redactor.pending_prefix(buffer)
        if keep:
            self._held = buffer[-keep:]
            return self.redactor.redact(buffer[:-keep])
        self._held = ""
        return self.redactor.redact(buffer)

    def drain(self) -> str:
        """Everything held back, redacted (at the end of a cell: it cannot be completed any more)."""
        out, self._held = self._held, ""
        return self.redactor.redact(out) if out else out

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
_previous_make_record: Any = None
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _clean_value(value: Any, redactor: Redactor) -> Any:
    """A structured log field with secret values removed (objects whose text holds one become text)."""
    if isinstance(value, (str, dict, list, tuple)):
        return redactor.redact_data(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    try:
        text = str(value)
    except Exception:
        return value
    clean = redactor.redact(text)
    return clean if clean != text else value


def _redacted_exception(value: BaseException, redactor: Redactor, depth: int = 0) -> BaseException:
    """A stand-in for ``value`` of the same (displayed) type whose text and chain are redacted."""
    kind = type(value)
    text = redactor.redact(str(value))
    stand_in_type = type(
        kind.__name__, (Exception,), {"__module__": kind.__module__, "__qualname__": kind.__qualname__}
    )
    stand_in = stand_in_type(text)
    stand_in.__traceback__ = value.__traceback__
    if depth < 20:
        if value.__cause__ is not None:
            stand_in.__cause__ = _redacted_exception(value.__cause__, redactor, depth + 1)
        elif value.__context__ is not None:
            stand_in.__context__ = _redacted_exception(value.__context__, redactor, depth + 1)
    stand_in.__suppress_context__ = value.__suppress_context__
    notes = getattr(value, "__notes__", None)
    if isinstance(notes, list):
        stand_in.__notes__ = [redactor.redact(str(n)) for n in notes]
    return stand_in


def _redact_exc_info(record: logging.LogRecord, redactor: Redactor) -> None:
    """Make ``record.exc_info`` safe for formatters that format it themselves (not via exc_text)."""
    info = record.exc_info
    if not info or not isinstance(info, tuple) or info[1] is None:
        return
    text = logging.Formatter().formatException(info)
    clean = redactor.redact(text)
    record.exc_text = clean
    if clean == text:
        return
    stand_in = _redacted_exception(info[1], redactor)
    safe: Any = (type(stand_in), stand_in, info[2])
    if redactor.redact(logging.Formatter().formatException(safe)) != logging.Formatter().formatException(safe):
        stand_in.__traceback__ = None  # a frame's source line holds the value: drop the frames
        safe = (type(stand_in), stand_in, None)
    record.exc_info = safe


def _redact_record(record: logging.LogRecord, redactor: Redactor) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to logging to report
        return
    clean = redactor.redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info:
        _redact_exc_info(record, redactor)
    elif record.exc_text:
        record.exc_text = redactor.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)


def _redact_extra(record: logging.LogRecord, redactor: Redactor) -> None:
    for key, value in list(record.__dict__.items()):
        if key not in _STANDARD_ATTRS:
            record.__dict__[key] = _clean_value(value, redactor)


def install_log_redaction(redactor: Redactor | None = None) -> None:
    """Redact every log record created in this process, whatever handler or formatter sees it.

    A log-record factory redacts the message, the traceback (``exc_text`` and a
    redacted stand-in for ``exc_info``, so a formatter that formats the exception
    itself sees no value either) and the stack; ``Logger.makeRecord`` is wrapped so
    the ``extra=`` fields (set after the factory ran) are redacted too.  It covers
    every logger and handler, sci_ext's JSON log included, whatever handlers are
    added later.
    """
    global _previous_factory, _previous_make_record
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

        make_record = logging.Logger.makeRecord

        def redacting_make_record(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make_record(self, *args, **kwargs)
            if target:
                _redact_extra(record, target)
            return record

        _previous_make_record = make_record
        logging.Logger.makeRecord = redacting_make_record  # type: ignore[method-assign]


def uninstall_log_redaction() -> None:
    """Undo :func:`install_log_redaction`."""
    global _previous_factory, _previous_make_record
    with _factory_lock:
        if _previous_factory is not None:
            logging.setLogRecordFactory(_previous_factory)
            _previous_factory = None
        if _previous_make_record is not None:
            logging.Logger.makeRecord = _previous_make_record  # type: ignore[method-assign]
            _previous_make_record = None
