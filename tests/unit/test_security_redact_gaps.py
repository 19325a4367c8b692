"""Redaction gaps of the review (in-process): shortened displays, URL-encoded forms, log fields
and formatter-built tracebacks, redact-then-shorten, binary buffers, the fd echo."""

from __future__ import annotations

import io
import logging
import os
import urllib.parse

import pytest

from sci_ext.core.security.redact import (
    Redactor,
    StreamRedactor,
    get_redactor,
    install_log_redaction,
    partial_min_length,
    shorten,
    uninstall_log_redaction,
)

KEY = "sk-proj-Zx9QvT3mK8pL2wR7nB4yH6jD1fG5sA0c"  # the review's 40-character key
LONG = (
    "sk-"
    + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kM9nP2rS5uV8xA1cD4fG7iL0oR3tU6wY9zB2dE5gH8jK1mN4pQ7sT0vW3yZ6bC9eF2hJ5kM8nP1rS4uV7xA0cD3fG6iL9oR2tU"
)
AWS = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor()
    r.add("OPENAI_API_KEY", KEY)
    r.add("LONG_KEY", LONG)
    r.add("AWS_SECRET_ACCESS_KEY", AWS)
    return r


def test_partial_length_rule() -> None:
    assert partial_min_length(40) == 12 and partial_min_length(164) == 12 and partial_min_length(24) == 12
    assert partial_min_length(16) == 8 and partial_min_length(10) == 6 and partial_min_length(6) == 6


@pytest.mark.parametrize(
    "shown",
    [
        KEY[: 46 * len(KEY) // 51],  # pandas' truncated cell: 46 of 51 characters, scaled
        KEY[:-1] + "…",
        KEY[:25] + "..." + KEY[-25:],  # %whos: first and last 25
        KEY[:12],
        KEY[-12:],
        LONG[:144] + "...",  # the 200-character cut of %%guarded
        "'" + LONG[:98],  # %xmode Verbose's repr cut
    ],
    ids=["pandas", "ellipsis", "whos", "prefix12", "suffix12", "cut144", "verbose"],
)
def test_a_long_enough_prefix_or_suffix_is_redacted(redactor: Redactor, shown: str) -> None:
    out = redactor.redact(f"value: {shown} end")
    for value in (KEY, LONG):
        assert value[:12] not in out and value[-12:] not in out
    assert "[REDACTED:" in out and out.startswith("value: ") and out.endswith(" end")


def test_short_fragments_and_ordinary_text_stay(redactor: Redactor) -> None:
    assert redactor.redact(KEY[:11]) == KEY[:11]  # at most 11 characters from an end stay visible
    assert redactor.redact(KEY[-11:]) == KEY[-11:]
    assert redactor.redact("sk-proj- is the prefix of project keys") == "sk-proj- is the prefix of project keys"


@pytest.mark.parametrize(
    "encode", [urllib.parse.quote, urllib.parse.quote_plus, lambda v: urllib.parse.quote(v, safe="")]
)
def test_url_encoded_forms_are_redacted(redactor: Redactor, encode) -> None:
    url = f"https://api.example/v1?key={encode(AWS)}&x=1"
    out = redactor.redact(f"HTTP 403 for {url}")
    assert encode(AWS) not in out and "[REDACTED:AWS_SECRET_ACCESS_KEY]" in out


def test_bytes_are_redacted(redactor: Redactor) -> None:
    data = b"\x89PNG\x00" + KEY.encode() + b"\xff" + AWS[:20].encode()
    out = redactor.redact_bytes(memoryview(data))
    assert KEY.encode() not in out and AWS[:12].encode() not in out
    assert out.startswith(b"\x89PNG\x00[REDACTED:OPENAI_API_KEY]\xff")
    assert redactor.redact_bytes(b"plain \xff bytes") == b"plain \xff bytes"


def test_shorten_redacts_first(redactor: Redactor) -> None:
    message = "Error code: 401 - Incorrect API key provided: " + LONG + " (see dashboard)"
    cut_first = message[:197] + "..."
    assert LONG[:100] in cut_first  # what cutting first used to show
    out = shorten(message, 200, redactor)
    assert len(out) <= 200 and LONG[:12] not in out and "[REDACTED:LONG_KEY]" in out


def test_guarded_summary_line_never_shows_the_key(capsys) -> None:
    from sci_ext.kernel.guard_magics import _short

    get_redactor().add("LONG_KEY", LONG)
    try:
        line = _short(RuntimeError("Incorrect API key provided: " + LONG))
    finally:
        get_redactor().clear()
    assert LONG[:12] not in line and LONG[-12:] not in line and "[REDACTED:LONG_KEY]" in line


def test_stream_halves_are_each_redacted(redactor: Redactor) -> None:
    stream = StreamRedactor(redactor)
    out = stream.feed(KEY[:20] + "\n") + stream.feed(KEY[20:] + "\n") + stream.drain()
    assert KEY[:12] not in out and KEY[-12:] not in out


@pytest.fixture
def log_redaction():
    get_redactor().add("OPENAI_API_KEY", KEY)
    install_log_redaction()
    yield
    uninstall_log_redaction()
    get_redactor().clear()


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(formatter)
    logger = logging.getLogger("sci_ext.test_gaps")
    logger.addHandler(handler)
    logger.propagate = False
    return logger, sink, handler


class FieldsFormatter(logging.Formatter):
    """A structured formatter: every extra field, and the traceback it builds itself from exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k in ("token", "headers", "client")}
        text = f"{record.getMessage()} {fields}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def test_log_extra_fields_and_formatter_built_tracebacks(log_redaction) -> None:
    logger, sink, handler = _capture(FieldsFormatter())
    try:
        logger.warning("call", extra={"token": KEY})
        logger.warning("call", extra={"headers": {"Authorization": f"Bearer {KEY}"}})

        class Headers:
            def __str__(self) -> str:
                return f"Authorization: Bearer {KEY}"

        logger.warning("call", extra={"client": Headers()})
        try:
            try:
                raise KeyError(KEY)
            except KeyError as inner:
                raise RuntimeError(f"request with {KEY[:30]} failed") from inner
        except RuntimeError:
            logger.exception("failed")
    finally:
        logging.getLogger("sci_ext.test_gaps").removeHandler(handler)
    text = sink.getvalue()
    assert KEY[:12] not in text and KEY[-12:] not in text, text
    assert text.count("[REDACTED:OPENAI_API_KEY]") >= 5
    assert "RuntimeError" in text and "KeyError" in text and "Traceback" in text


def test_log_extra_of_other_types_is_kept(log_redaction) -> None:
    logger, sink, handler = _capture(logging.Formatter("%(message)s %(count)s %(ratio)s"))
    try:
        logger.warning("n", extra={"count": 3, "ratio": 0.5})
    finally:
        logging.getLogger("sci_ext.test_gaps").removeHandler(handler)
    assert sink.getvalue() == "n 3 0.5\n"


def test_fd_echo_is_redacted(redactor: Redactor, tmp_path) -> None:
    from sci_ext.kernel.fd_echo import EchoRedactor

    target = tmp_path / "server.log"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    echo = EchoRedactor(fd, redactor, hold_seconds=0.2)
    echo.start()
    try:
        os.write(fd, f"token={KEY}\n".encode())
        os.write(fd, KEY[:20].encode())
        os.write(fd, (KEY[20:] + "\n").encode())
        os.write(fd, b"tail " + KEY[:5].encode())
    finally:
        echo.stop()
        os.close(fd)
    text = target.read_text()
    assert KEY[:12] not in text and KEY[-12:] not in text
    assert text.startswith("token=[REDACTED:OPENAI_API_KEY]\n[REDACTED:OPENAI_API_KEY]\ntail ")


@pytest.mark.parametrize("watched", [True, False])
def test_echo_install_finds_the_kernel_streams(redactor: Redactor, tmp_path, monkeypatch, watched: bool) -> None:
    """Watched: ipykernel's copy of the original fd; not watched: the original fd itself."""
    import sys

    from sci_ext.kernel import fd_echo

    target = tmp_path / "server.log"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)

    class OutStream:  # the class name of ipykernel's streams
        _original_stdstream_copy = fd if watched else None
        _should_watch = watched

    class Original:
        def fileno(self) -> int:
            return fd

    monkeypatch.setattr(sys, "stdout", OutStream())
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a kernel stream: left alone
    monkeypatch.setattr(sys, "__stdout__", Original())
    assert fd_echo._echo_fds() == [fd]
    undo = fd_echo.install(get_redactor())
    get_redactor().add("OPENAI_API_KEY", KEY)
    try:
        os.write(fd, f"log line {KEY}\n".encode())
    finally:
        undo()
        get_redactor().clear()
        os.close(fd)
    assert target.read_text() == "log line [REDACTED:OPENAI_API_KEY]\n"
