"""Run a notebook's code cells in one real IPython kernel (jupyter_client) and record each cell.

One :func:`run_cells` call is one kernel process: start, optionally ``%load_ext sci_ext``,
execute the cells in order (each with a timeout; a cell that times out is interrupted, and
the cells after it are recorded as not run), then shut the kernel down.  After every cell
the probe (:mod:`sci_diff_probe`) reports the notebook's state digest and the cache events
through ``user_expressions``, so the probe adds no cell, no ``Out`` entry and no global.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

PROBE_DIR = Path(__file__).resolve().parent
_PROBE_EXPR = "__import__('sci_diff_probe').snapshot()"


@dataclass
class CellRun:
    """What one cell did in one run."""

    index: int
    source: str
    outputs: list[dict[str, Any]] = field(default_factory=list)  # nbformat-shaped
    state: dict[str, str] | None = field(default_factory=dict)  # None: the probe failed after this cell
    events: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: The kernel's CPU seconds for this cell (the probe's snapshots around it); None: unknown.
    cpu: float | None = None
    status: str = "ok"  # ok | error | timeout | not run

    @property
    def hit(self) -> bool:
        """The cell cache served this cell (a ``hit`` event, or the hit notice as a fallback)."""
        if any(e.get("source") == "cell" and e.get("result") == "hit" for e in self.events):
            return True
        return any(
            out.get("output_type") == "stream"
            and "[sci_ext] cached cell" in out.get("text", "")
            and "restored from" in out.get("text", "")
            for out in self.outputs
        )


@dataclass
class KernelConfig:
    """How to start the kernel of one run."""

    env: dict[str, str]
    cwd: Path
    load_extension: bool = False
    cell_timeout: float = 60.0
    startup_timeout: float = 60.0


def _start(config: KernelConfig) -> KernelManager:
    km = KernelManager(kernel_name="python3")
    # This interpreter, so the kernel sees the same packages as the harness.
    km.kernel_spec.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    # The kernel's own log (the TCP transport warning...) is not the notebook's output.
    km.start_kernel(env=config.env, cwd=str(config.cwd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return km


def _execute(kc: Any, code: str, timeout: float, probe: bool) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """Run ``code``; ``(outputs, probe snapshot, status)``; status ``timeout`` leaves it running."""
    expressions = {"probe": _PROBE_EXPR} if probe else {}
    msg_id = kc.execute(code, store_history=True, allow_stdin=False, user_expressions=expressions)
    outputs: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return outputs, {}, "timeout"
        try:
            msg = kc.get_iopub_msg(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
        elif kind in ("display_data", "execute_result"):
            outputs.append({"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {})})
        elif kind == "error":
            outputs.append({"output_type": "error", **{k: content[k] for k in ("ename", "evalue", "traceback")}})
        elif kind == "clear_output":
            outputs.clear()  # what a notebook keeps (wait=True clears at the next output: same end)
        elif kind == "status" and content["execution_state"] == "idle":
            break
    status = "error" if any(o["output_type"] == "error" for o in outputs) else "ok"
    snapshot: dict[str, Any] = {}
    while time.monotonic() < deadline + 10:
        try:
            reply = kc.get_shell_msg(timeout=5)
        except queue.Empty:
            break
        if reply["parent_header"].get("msg_id") != msg_id:
            continue
        content = reply["content"]
        if content.get("status") == "error":
            status = "error"
            if not any(o["output_type"] == "error" for o in outputs):  # UsageError: stderr only
                outputs.append(
                    {
                        "output_type": "error",
                        "ename": content.get("ename", ""),
                        "evalue": content.get("evalue", ""),
                        "traceback": [],
                    }
                )
        found = content.get("user_expressions", {}).get("probe", {})
        if found.get("status") == "ok":
            snapshot = json.loads(ast.literal_eval(found["data"]["text/plain"]))
        elif probe:
            snapshot = {"state": None, "probe_error": f"{found.get('ename')}: {found.get('evalue')}"}
        break
    return outputs, snapshot, status


def run_cells(sources: list[str], config: KernelConfig) -> list[CellRun]:
    """Run ``sources`` as the code cells of one notebook in a fresh kernel."""
    km = _start(config)
    kc = km.client()
    kc.start_channels()
    runs = [CellRun(i, src, status="not run") for i, src in enumerate(sources)]
    try:
        kc.wait_for_ready(timeout=config.startup_timeout)
        setup = "%load_ext sci_ext\n" if config.load_extension else ""
        setup += "__import__('sci_diff_probe').install()" if config.load_extension else ""
        if setup:
            outputs, _, status = _execute(kc, setup, config.startup_timeout, probe=False)
            if status != "ok":
                raise RuntimeError(f"kernel setup failed: {outputs}")
        cpu_after: float | None = None  # the kernel's CPU time after the previous snapshot
        for run in runs:
            start = time.perf_counter()
            outputs, snapshot, status = _execute(kc, run.source, config.cell_timeout, probe=True)
            run.seconds = time.perf_counter() - start
            run.outputs, run.status = outputs, status
            run.state = snapshot.get("state", {}) if snapshot else None
            run.events = snapshot.get("events", [])
            if cpu_after is not None and isinstance(snapshot.get("cpu"), float):
                run.cpu = snapshot["cpu"] - cpu_after
            cpu_after = snapshot.get("cpu_after") if snapshot else None
            if status == "timeout":
                # The notebook is stuck: what follows is not comparable.  Interrupt and stop.
                km.interrupt_kernel()
                break
    finally:
        try:
            kc.stop_channels()
        finally:
            km.shutdown_kernel(now=True)
    return runs


def kernel_env(
    code_root: Path | None,
    home: Path,
    cache_dir: Path | None,
    extra: dict[str, str] | None = None,
    bytecode: bool = False,
) -> dict[str, str]:
    """An isolated kernel environment: own XDG/IPython dirs, own cache, ``code_root`` first on sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCI_EXT_")}
    paths = [str(PROBE_DIR)] + ([str(code_root)] if code_root else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache-home"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("IPYTHONDIR", "ipython"),
        ("JUPYTER_CONFIG_DIR", "jupyter-config"),
        ("JUPYTER_DATA_DIR", "jupyter-data"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    if cache_dir is not None:
        env["SCI_EXT_CACHE__DIR"] = str(cache_dir)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra or {})
    return env
