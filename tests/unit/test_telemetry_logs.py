"""The JSON log: fields, correlation ids, redaction, text format, rotation shared by processes, bad dirs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest
from kernel_harness import REPO

from sci_ext.core import context
from sci_ext.core.errors import ConfigError


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_json_line_has_the_spec_fields_and_extras(telemetry):
    from sci_ext.core.telemetry import get_logger, log_path

    log = get_logger("pipeline")
    assert log.name == "sci_ext.pipeline" and get_logger("sci_ext.x").name == "sci_ext.x"
    with context.using(execution_count=7) as ctx:
        log.info("step %d done", 3, extra={"step": 3, "payload": {"k": [1, 2]}})
    log.warning("outside")
    lines = read(log_path())
    first, second = lines[-2], lines[-1]
    assert {"ts", "level", "logger", "msg", "correlation_id", "kernel_id", "execution_count"} <= set(first)
    assert first["msg"] == "step 3 done" and first["level"] == "INFO" and first["logger"] == "sci_ext.pipeline"
    assert first["correlation_id"] == ctx.correlation_id and first["execution_count"] == 7
    assert first["step"] == 3 and first["payload"] == {"k": [1, 2]}
    assert second["correlation_id"] is None  # outside a run
    assert "_sci_redacted" not in first


def test_threads_started_through_wrap_keep_the_id(telemetry):
    import threading

    from sci_ext.core.telemetry import get_logger, log_path

    log = get_logger("t")
    with context.using() as ctx:
        t = threading.Thread(target=context.wrap(lambda: log.info("from thread")))
        t.start()
        t.join()
    assert read(log_path())[-1]["correlation_id"] == ctx.correlation_id


def test_secrets_are_redacted_in_message_extras_and_traceback(telemetry):
    from sci_ext.core.security import get_redactor
    from sci_ext.core.telemetry import get_logger, log_path

    secret = "tok-9f8e7d6c5b4a3210"
    get_redactor().add("TOKEN", secret)
    try:
        log = get_logger("sec")
        log.info("using %s", secret, extra={"header": f"Bearer {secret}", "nested": {"k": secret}})
        try:
            raise RuntimeError(f"rejected {secret}")
        except RuntimeError:
            log.exception("call failed")
    finally:
        get_redactor().remove("TOKEN")
    text = log_path().read_text()
    assert secret not in text
    lines = read(log_path())
    assert lines[-2]["msg"] == "using [REDACTED:TOKEN]" and lines[-2]["header"] == "Bearer [REDACTED:TOKEN]"
    assert lines[-2]["nested"] == {"k": "[REDACTED:TOKEN]"}
    assert "[REDACTED:TOKEN]" in lines[-1]["exc_info"]


def test_text_format_and_stderr(sci_env, monkeypatch, capsys):
    from sci_ext.core.telemetry import logs

    monkeypatch.setenv("SCI_EXT_CORE__LOG_FORMAT", "text")
    monkeypatch.setenv("SCI_EXT_MONITORING__LOG_STDERR", "true")
    try:
        path = logs.configure_logging(force=True)
        with context.using(correlation_id="c0ffee", execution_count=2):
            logs.get_logger("human").warning("readable")
    finally:
        logs.unconfigure_logging()
    line = path.read_text().splitlines()[-1]
    assert "WARNING" in line and "sci_ext.human [c0ffee #2] readable" in line
    assert not line.startswith("{")
    assert "sci_ext.human [c0ffee #2] readable" in capsys.readouterr().err


def test_bad_log_settings_are_one_line_config_errors(sci_env):
    from sci_ext.core.config import get_config, get_config_manager

    manager = get_config_manager()
    for key, value in (
        ("core.log_format", "xml"),
        ("monitoring.error_rate_threshold", 2),
        ("monitoring.check_timeout_seconds", 0),
        ("monitoring.log_max_bytes", 10),
    ):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
            manager.set(key, value)
        assert "\n" not in str(info.value)
    assert get_config().core.log_format == "json"  # the good config stays


def test_unwritable_log_dir_warns_once(sci_env, tmp_path, monkeypatch, capsys):
    from sci_ext.core.telemetry import logs

    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("SCI_EXT_CORE__STATE_DIR", str(blocker))
    logs._warned.clear()
    try:
        assert logs.configure_logging(force=True) is None
        assert logs.configure_logging(force=True) is None
        logs.get_logger("x").error("goes nowhere, raises nothing")
    finally:
        logs.unconfigure_logging()
    err = capsys.readouterr().err
    assert err.count("cannot write the log") == 1, err


WRITER = textwrap.dedent(
    """
    import sys
    from sci_ext.core.telemetry import logs
    logs.configure_logging()
    log = logs.get_logger("writer")
    for i in range(int(sys.argv[2])):
        log.info("line", extra={"writer": sys.argv[1], "i": i, "pad": "x" * 100})
    """
)


def test_rotation_shared_by_two_processes_loses_no_line(sci_env, monkeypatch):
    from sci_ext.core.telemetry import log_path

    env = {
        **{k: v for k, v in __import__("os").environ.items()},
        "SCI_EXT_MONITORING__LOG_MAX_BYTES": "8192",
        "SCI_EXT_MONITORING__LOG_BACKUPS": "1000",
        "PYTHONPATH": str(REPO),
    }
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, name, "400"], env=env, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    base = log_path()
    files = [base, *sorted(base.parent.glob(base.name + ".*[0-9]"))]
    assert len(files) > 5  # rotated many times
    seen = [(r["writer"], r["i"]) for f in files for r in read(f)]
    assert len(seen) == 800 and set(seen) == {(w, i) for w in "ab" for i in range(400)}
    assert all(f.stat().st_size < 8192 + 1024 for f in files[1:])


def test_rotation_keeps_the_configured_number_of_backups(sci_env, monkeypatch):
    from sci_ext.core.telemetry import logs

    monkeypatch.setenv("SCI_EXT_MONITORING__LOG_MAX_BYTES", "1024")
    monkeypatch.setenv("SCI_EXT_MONITORING__LOG_BACKUPS", "2")
    try:
        path = logs.configure_logging(force=True)
        log = logs.get_logger("rot")
        for i in range(200):
            log.info("entry %d", i)
    finally:
        logs.unconfigure_logging()
    names = sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock"))
    assert names == ["sci_ext.jsonl", "sci_ext.jsonl.1", "sci_ext.jsonl.2"]
    assert read(path)[-1]["msg"] == "entry 199"


def test_log_listener_sees_records_with_context(telemetry):
    from sci_ext.core.telemetry.logs import add_log_listener, get_logger

    got: list[logging.LogRecord] = []
    remove = add_log_listener(got.append)
    try:
        with context.using(correlation_id="abc"):
            get_logger("l").info("hello")
    finally:
        remove()
    assert got[-1].correlation_id == "abc"  # type: ignore[attr-defined]
