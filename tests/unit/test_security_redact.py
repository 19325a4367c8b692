"""Redaction of secret values from text, nested data, streams and logs (in-process)."""

from __future__ import annotations

import io
import logging

import pytest

from sci_ext.core.security.redact import Redactor, StreamRedactor, install_log_redaction

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor()
    r.add("OPENAI_API_KEY", SECRET)
    return r


def test_whole_values_and_escaped_forms(redactor: Redactor) -> None:
    assert redactor.redact(f"key={SECRET}!") == "key=[REDACTED:OPENAI_API_KEY]!"
    tricky = Redactor()
    tricky.add("PW", 'p<a>s"s\\word')
    assert "p<a>s" not in tricky.redact(repr('p<a>s"s\\word'))
    assert tricky.redact("<b>p&lt;a&gt;s&quot;s\\word</b>") == "<b>[REDACTED:PW]</b>"
    assert tricky.redact('{"v": "p<a>s\\"s\\\\word"}') == '{"v": "[REDACTED:PW]"}'


def test_nested_data(redactor: Redactor) -> None:
    data = {"text/plain": [SECRET], "application/json": {"k": SECRET, SECRET: 1, "n": 3}, "t": (SECRET,)}
    out = redactor.redact_data(data)
    assert SECRET not in repr(out)
    assert out["application/json"]["n"] == 3 and isinstance(out["t"], tuple)


def test_short_values_are_not_redacted() -> None:
    r = Redactor()
    assert r.add("TINY", "abc") is False
    assert r.redact("abc") == "abc" and not r


def test_remove_and_clear(redactor: Redactor) -> None:
    redactor.add("OTHER", "another-secret-value")
    redactor.remove("OPENAI_API_KEY")
    assert redactor.redact(SECRET) == SECRET
    assert redactor.names() == {"OTHER"}
    redactor.clear()
    assert redactor.redact("another-secret-value") == "another-secret-value"


@pytest.mark.parametrize("cut", [1, 5, len(SECRET) - 1])
def test_stream_catches_values_split_across_writes(redactor: Redactor, cut: int) -> None:
    stream = StreamRedactor(redactor)
    emitted = stream.feed("before " + SECRET[:cut])
    assert SECRET[:cut] not in emitted or cut == 1 and emitted == "before "
    emitted += stream.feed(SECRET[cut:] + " after")
    emitted += stream.drain()
    assert emitted == "before [REDACTED:OPENAI_API_KEY] after"


def test_stream_split_over_many_writes_and_false_starts(redactor: Redactor) -> None:
    stream = StreamRedactor(redactor)
    out = "".join(stream.feed(ch) for ch in "sk-no " + SECRET + " sk-")
    assert out.startswith("sk-no [REDACTED:OPENAI_API_KEY]")
    assert stream.holding
    assert out + stream.drain() == "sk-no [REDACTED:OPENAI_API_KEY] sk-"


def test_stream_without_secrets_passes_through() -> None:
    stream = StreamRedactor(Redactor())
    assert stream.feed("plain text") == "plain text" and not stream.holding


def test_log_records_are_redacted(redactor: Redactor, tmp_path) -> None:
    import sci_ext.core.security.redact as redact_module

    redact_module._redactor.add("OPENAI_API_KEY", SECRET)
    install_log_redaction()
    logger = logging.getLogger("sci_ext.test_redact")
    handler = logging.FileHandler(tmp_path / "log.txt")
    logger.addHandler(handler)
    try:
        logger.warning("key is %s", SECRET)
        try:
            raise ValueError(f"bad key {SECRET}")
        except ValueError:
            logger.exception("failed with %s", SECRET[:4] + SECRET[4:])
        logger.warning("stack", stack_info=True, extra={"x": 1})
    finally:
        logger.removeHandler(handler)
        handler.close()
        redact_module._redactor.clear()
    text = (tmp_path / "log.txt").read_text()
    assert SECRET not in text
    assert text.count("[REDACTED:OPENAI_API_KEY]") == 3


def test_redacting_stream_proxy(redactor: Redactor) -> None:
    from sci_ext.kernel.redaction import RedactingStream

    sink = io.StringIO()
    stream = RedactingStream(sink, redactor)
    stream.write(SECRET[:6])
    stream.writelines([SECRET[6:], "\n"])
    stream.write("tail sk-")
    assert sink.getvalue() == "[REDACTED:OPENAI_API_KEY]\ntail "
    stream.drain()
    assert sink.getvalue().endswith("tail sk-")
    assert stream.getvalue() == sink.getvalue()  # other attributes pass through


def test_terminal_ipython_streams_are_redacted(tmp_path) -> None:
    """Outside a kernel, sys.stdout/sys.stderr are wrapped instead (terminal IPython)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'sci_ext')\n"
        "from sci_ext.core.security import get_redactor\n"
        f"get_redactor().add('K', {SECRET!r})\n"
        f"ip.run_cell({f'print({SECRET[:5]!r}, end=chr(0)[:0]); print({SECRET[5:]!r})'!r})\n"
        "ip.run_line_magic('unload_ext', 'sci_ext')\n"
        f"print('after unload', type(sys.stdout).__name__)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(repo)},
        timeout=60,
    )
    assert "[REDACTED:K]" in out.stdout, out.stderr
    assert SECRET not in out.stdout + out.stderr
    assert "after unload" in out.stdout and "RedactingStream" not in out.stdout
