"""Running whole notebooks with every cell cached: the kernel setup the nbval plugin and ``jupyter sci run`` share.

A notebook runner (nbval, nbclient) starts its kernel from a kernelspec.  :func:`make_kernelspec`
writes one, in a private temporary directory put first on ``JUPYTER_PATH``, that starts an
IPython kernel of this Python with ``--ext=sci_ext`` and an environment turning on auto
mode (``cache.auto``), pointing the cell cache at the chosen directory and asking the
kernel for a report: one JSON line per cell (``seq``, ``cell`` digest, ``first_line``,
``status`` restored / ran / skipped / plain / failed, ``reason``, ``seconds``).  The
kernel side is ``sci_ext.kernel.cellcache.auto``.

Standard library only: this module is imported by the pytest plugin, which loads in every
pytest run of an environment where sci_ext is installed.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["KERNEL_NAME", "REPORT_VAR", "RUNNER_CACHE_VAR", "AutoKernel", "make_kernelspec", "read_report"]

#: Environment variable naming the JSON-lines file the kernel appends one record per cell to.
REPORT_VAR = "SCI_EXT_AUTO_REPORT"
#: Environment variable naming the runner's cache directory: the cells auto mode wraps use it
#: whatever the notebook sets ``cache.dir`` to, so the notebook's own ``%%cached`` cells and
#: their statistics are those of a plain run.
RUNNER_CACHE_VAR = "SCI_EXT_AUTO_CACHE_DIR"
#: The name of the kernelspec written by :func:`make_kernelspec`.
KERNEL_NAME = "sci-ext-auto-python3"
#: Loaded with ``--ext`` under its own name, so a notebook's ``%load_ext sci_ext`` stays silent.
_EXTENSION = "sci_ext.kernel.autoload"


@dataclass
class AutoKernel:
    """A kernelspec for auto mode: its name, its ``JUPYTER_PATH`` entry and its report file."""

    name: str
    jupyter_path: Path
    report: Path

    def activate(self) -> None:
        """Put the kernelspec first on ``JUPYTER_PATH`` of this process (kernel managers read it)."""
        current = os.environ.get("JUPYTER_PATH", "")
        entries = [str(self.jupyter_path), *[p for p in current.split(os.pathsep) if p]]
        os.environ["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(entries))

    def read(self, start: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The report records from byte ``start`` on, and the offset to read from next time."""
        return read_report(self.report, start)


def make_kernelspec(workdir: Path, cache_dir: Path | None, env: dict[str, str] | None = None) -> AutoKernel:
    """Write the auto-mode kernelspec under ``workdir`` (private) and an empty report file.

    ``cache_dir`` None: auto mode stays off (the runner found the cache directory unusable
    and said so); the kernel still reports every cell as run, so the verdict is a full run's.
    """
    from . import trust

    trust.ensure_private_dir(workdir, what="auto-mode work directory")
    spec_dir = trust.ensure_private_dir(workdir / "kernels" / KERNEL_NAME, what="auto-mode kernelspec")
    report = workdir / "report.jsonl"
    os.close(trust.open_private(report, os.O_WRONLY | os.O_TRUNC, what="auto-mode report"))
    kernel_env: dict[str, str] = {REPORT_VAR: str(report), **(env or {})}
    if cache_dir is not None:
        kernel_env.update({"SCI_EXT_CACHE__AUTO": "true", RUNNER_CACHE_VAR: str(cache_dir)})
    else:
        kernel_env.update(SCI_EXT_CACHE__AUTO="false")
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", f"--ext={_EXTENSION}"],
        "display_name": "Python 3 (sci_ext auto cache)",
        "language": "python",
        "env": kernel_env,
        "metadata": {"debugger": False},
    }
    trust.atomic_write(spec_dir / "kernel.json", json.dumps(spec, indent=1))
    return AutoKernel(KERNEL_NAME, workdir, report)


def read_report(path: Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Records of a report file from byte ``start``; a torn or foreign line is skipped."""
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read()
    except OSError:
        return [], start
    end = data.rfind(b"\n") + 1  # a line still being written is read next time
    records = []
    for line in data[:end].splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, start + end
