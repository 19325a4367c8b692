"""Recent error records shared by every process: a bounded JSON-lines file.

Kernels record errors (``handle_errors``, ``%%guarded``, cells that raise); the
server's status API shows them.  Both meet in ``core.state_dir/telemetry/errors.jsonl``:
each record is one line appended with a single ``write`` (``O_APPEND``: lines of
concurrent writers do not interleave); when the file passes :data:`MAX_BYTES` the
newest lines are kept (at most :data:`KEEP_LINES`, at most half of :data:`MAX_BYTES`;
under a file lock, by an atomic rename).
Messages are redacted before they are written and cut to 500 characters.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["KEEP_LINES", "MAX_BYTES", "append_error", "errors_path", "read_errors"]

#: Size at which the file is trimmed.
MAX_BYTES = 256 * 1024
#: Lines kept by a trim.
KEEP_LINES = 200
#: Characters of a message kept.
MESSAGE_LIMIT = 500


def errors_path(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """``core.state_dir/telemetry/errors.jsonl``."""
    if state_dir is None:
        from ..config import get_config

        state_dir = get_config().core.state_dir
    return Path(state_dir).expanduser() / "telemetry" / "errors.jsonl"


def _clean(text: str) -> str:
    from ..security.redact import get_redactor

    text = get_redactor().redact(text)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def append_error(record: dict[str, Any], path: Path | None = None) -> None:
    """Append one error record (``time``, ``where``, ``category``, ``error_type``, ``message``, ids)."""
    path = path or errors_path()
    clean = {k: (_clean(v) if isinstance(v, str) else v) for k, v in record.items()}
    clean.setdefault("time", time.time())
    line = (json.dumps(clean, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    from ..trust import ensure_private_dir, open_private

    ensure_private_dir(path.parent, what="telemetry directory")  # 0700 whatever the umask (review R4)
    fd = open_private(path, os.O_WRONLY | os.O_APPEND, what="error records")
    try:
        os.write(fd, line)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > MAX_BYTES:
        _trim(path)


def _trim(path: Path) -> None:
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(path) + ".lock", timeout=2, mode=0o600):
            if path.stat().st_size <= MAX_BYTES:
                return  # another process trimmed it
            lines = path.read_bytes().splitlines(keepends=True)[-KEEP_LINES:]
            total = sum(len(line) for line in lines)
            while len(lines) > 1 and total > MAX_BYTES // 2:  # room for many appends before the next trim
                total -= len(lines.pop(0))
            from ..trust import atomic_write

            atomic_write(path, b"".join(lines))
    except (Timeout, OSError):
        pass  # trimming is housekeeping: the next append tries again


def read_errors(limit: int = 50, path: Path | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` records, newest first (``[]`` when there are none)."""
    path = path or errors_path()
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - MAX_BYTES * 2))
            data = fh.read()
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for raw in reversed(data.splitlines()):
        try:
            item = json.loads(raw)
        except ValueError:
            continue  # a partial first line, or a torn write
        if isinstance(item, dict):
            out.append(item)
            if len(out) >= limit:
                break
    return out
