"""sci_ext's log: JSON lines carrying the correlation id of the running cell.

:func:`configure_logging` puts one handler on the ``sci_ext`` logger: a size-rotated
file ``core.state_dir/logs/sci_ext.jsonl`` (``monitoring.log_max_bytes``,
``monitoring.log_backups``), optionally stderr too (``monitoring.log_stderr``).
``core.log_format = "json"`` (the default) writes one JSON object a line with
python-json-logger: ``ts``, ``level``, ``logger``, ``msg``, ``correlation_id``,
``kernel_id``, ``execution_count`` and the record's extras; ``"text"`` writes a line for
humans.  Every record passes the redactor (message, extras, traceback) before any
handler formats it, so no secret value reaches a log file.

Kernels and the server write the same file: lines are appended (``O_APPEND``), and a
rotation happens under a file lock and re-checks the file's size, so two processes do
not rotate twice; a process whose file was rotated by another reopens the new one.

A log directory that cannot be written gives one warning on stderr and no file
handler: the caller keeps working.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import context

__all__ = [
    "LOG_FILE_NAME",
    "ContextFilter",
    "configure_logging",
    "get_logger",
    "log_path",
    "unconfigure_logging",
]

#: Name of the JSON log inside ``core.state_dir/logs``.
LOG_FILE_NAME = "sci_ext.jsonl"

# Attributes every LogRecord has: anything else on a record is an "extra".
_RESERVED = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "", None, None))) | {"message", "asctime", "taskName"}
_CONTEXT_FIELDS = ("correlation_id", "kernel_id", "execution_count")
_EXTRA_LIMIT = 2000  # characters of one extra value kept in a log line

_lock = threading.Lock()
_handlers: list[logging.Handler] = []
_configured_key: tuple[Any, ...] | None = None
_warned: set[str] = set()


def log_path(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """``core.state_dir/logs/sci_ext.jsonl`` (of the current config when not given)."""
    if state_dir is None:
        from ..config import get_config

        state_dir = get_config().core.state_dir
    return Path(state_dir).expanduser() / "logs" / LOG_FILE_NAME


def _redact(value: Any) -> Any:
    from ..security.redact import get_redactor

    redactor = get_redactor()
    if not redactor:
        return value
    if isinstance(value, str):
        return redactor.redact(value)
    return redactor.redact_data(value)


class ContextFilter(logging.Filter):
    """Adds the run context (correlation id, kernel id, execution count) and redacts the record.

    A field the caller passed in ``extra=`` wins over the context (an error recorded
    for another run keeps its own correlation id).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill in the context fields; always keeps the record."""
        ctx = context.current()
        for name in _CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, getattr(ctx, name))
        for key, value in ctx.extra:
            if not hasattr(record, key):
                setattr(record, key, value)
        if getattr(record, "_sci_redacted", False):
            return True
        record._sci_redacted = True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it itself
            return True
        clean = _redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _redact(record.exc_text)
        if record.stack_info:
            record.stack_info = _redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in _RESERVED or key.startswith("_") or key in _CONTEXT_FIELDS:
                continue
            if isinstance(value, str) and len(value) > _EXTRA_LIMIT:
                setattr(record, key, _redact(value[:_EXTRA_LIMIT] + "…"))
            else:
                setattr(record, key, _redact(value))
        return True


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class _Formatter(JsonFormatter):
        def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
            super().add_fields(log_data, record, message_dict)
            log_data.pop("_sci_redacted", None)

        def formatException(self, ei: Any) -> str:
            return str(_redact(super().formatException(ei)))

        def formatStack(self, stack_info: str) -> str:
            return str(_redact(super().formatStack(stack_info)))

        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
            # ISO 8601 UTC with milliseconds: sortable and unambiguous across machines.
            ms = int(record.msecs)
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{ms:03d}Z"

    return _Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s %(kernel_id)s %(execution_count)s",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg"},
        json_ensure_ascii=False,
        json_default=str,
    )


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s #%(execution_count)s] %(message)s")


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A :class:`~logging.handlers.RotatingFileHandler` several processes can share.

    The size is the file's size on disk (other processes append too); the rollover
    runs under a file lock and only if the file still is over the limit; a process
    whose file was rotated away by another reopens the current file.
    """

    def __init__(self, filename: str, max_bytes: int, backups: int) -> None:
        super().__init__(filename, mode="a", maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True)
        self._lock_path = filename + ".lock"

    def _reopen_if_moved(self) -> None:
        if self.stream is None:
            return
        try:
            same = os.fstat(self.stream.fileno()).st_ino == os.stat(self.baseFilename).st_ino
        except OSError:
            same = False
        if not same:
            self.stream.close()
            self.stream = None

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """True when the shared file is over ``maxBytes``."""
        if self.maxBytes <= 0:
            return False
        self._reopen_if_moved()
        try:
            return os.stat(self.baseFilename).st_size >= self.maxBytes
        except OSError:
            return False

    def doRollover(self) -> None:
        """Rotate under a lock shared by every process writing this file."""
        from filelock import FileLock, Timeout

        try:
            with FileLock(self._lock_path, timeout=2, mode=0o600):
                if self.stream is not None:
                    self.stream.close()
                    self.stream = None
                try:
                    big = os.stat(self.baseFilename).st_size >= self.maxBytes
                except OSError:
                    big = False
                if big:  # another process may have rotated while we waited
                    super().doRollover()
        except Timeout:
            pass  # keep appending; the next record tries again
        if self.stream is None:
            self.stream = self._open()

    def _open(self) -> Any:
        from ..trust import open_private

        fd = open_private(self.baseFilename, os.O_WRONLY | os.O_APPEND, what="log file")
        return os.fdopen(fd, "a", encoding="utf-8")


def _warn_once(key: str, text: str) -> None:
    if key in _warned:
        return
    _warned.add(key)
    sys.stderr.write(f"sci_ext: warning: {text}\n")


#: The name of sci_ext's JSON-log file handler (it shows nothing on screen).
FILE_HANDLER_NAME = "sci_ext.jsonlog"


def _file_handler(path: Path, max_bytes: int, backups: int) -> logging.Handler | None:
    from ..trust import ensure_private_dir

    try:
        ensure_private_dir(path.parent, what="log directory")  # 0700 whatever the umask, ours
        handler = SharedRotatingFileHandler(str(path), max_bytes, backups)
        # Named so that code deciding whether the user sees log records (the retry notice of
        # sci_ext.core.resilience) knows this handler only writes the file.
        handler.set_name(FILE_HANDLER_NAME)
        # Open now so an unwritable directory shows here, once, not on every record.
        handler.stream = handler._open()
        return handler
    except OSError as exc:
        _warn_once(str(path), f"cannot write the log {path} ({exc.strerror or exc}); logging to the file is off")
        return None


def configure_logging(config: Any = None, *, force: bool = False) -> Path | None:
    """Attach sci_ext's log handler(s) to the ``sci_ext`` logger; returns the log file (None if unwritable).

    Idempotent: called again with the same settings it does nothing; with changed
    settings (``core.state_dir``, ``core.log_format``, ``core.log_level``, rotation) it
    replaces its handlers.
    """
    global _configured_key
    if config is None:
        from ..config import get_config

        config = get_config()
    core, mon = config.core, config.monitoring
    fmt = getattr(core, "log_format", "json")
    to_stderr = bool(getattr(mon, "log_stderr", False))
    path = log_path(core.state_dir)
    key = (str(path), fmt, core.log_level, mon.log_max_bytes, mon.log_backups, to_stderr)
    with _lock:
        if key == _configured_key and not force:
            return path if _handlers and isinstance(_handlers[0], logging.FileHandler) else None
        _remove_handlers()
        formatter = _json_formatter() if fmt == "json" else _TextFormatter()
        handlers: list[logging.Handler] = []
        file_handler = _file_handler(path, mon.log_max_bytes, mon.log_backups)
        if file_handler is not None:
            handlers.append(file_handler)
        if to_stderr:
            handlers.append(logging.StreamHandler(sys.stderr))
        logger = logging.getLogger("sci_ext")
        logger.setLevel(core.log_level)
        for handler in handlers:
            handler.setFormatter(formatter)
            handler.addFilter(ContextFilter())
            logger.addHandler(handler)
        _handlers.extend(handlers)
        _configured_key = key
    return path if file_handler is not None else None


def _remove_handlers() -> None:
    logger = logging.getLogger("sci_ext")
    for handler in _handlers:
        logger.removeHandler(handler)
        try:
            handler.close()
        except OSError:
            pass
    _handlers.clear()


def unconfigure_logging() -> None:
    """Remove the handlers :func:`configure_logging` added."""
    global _configured_key
    with _lock:
        _remove_handlers()
        _configured_key = None


def get_logger(name: str = "sci_ext") -> logging.Logger:
    """A logger under ``sci_ext`` whose records go to the JSON log with the current correlation id.

    ``get_logger("pipeline")`` is ``logging.getLogger("sci_ext.pipeline")``; the first call
    configures sci_ext's log from the current config.  Extras (``logger.info("...",
    extra={"step": 3})``) become fields of the JSON line.
    """
    if _configured_key is None:
        try:
            configure_logging()
        except Exception as exc:  # a broken config must not break logging callers
            _warn_once("configure", f"sci_ext logging not configured: {exc}")
    full = name if name == "sci_ext" or name.startswith("sci_ext.") else f"sci_ext.{name}"
    return logging.getLogger(full)


def add_log_listener(callback: Callable[[logging.LogRecord], None]) -> Callable[[], None]:
    """Call ``callback(record)`` for every sci_ext record (tests, dashboards); returns an undo."""

    class _Callback(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            callback(record)

    handler = _Callback()
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("sci_ext")
    logger.addHandler(handler)
    return lambda: logger.removeHandler(handler)
