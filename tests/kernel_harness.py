"""A real IPython kernel driven through jupyter_client, for tests.

``KernelSession.run(code)`` executes one cell and returns what a notebook would
show: stdout, stderr, display data, the execute result and the error, if any.
"""

from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CellResult:
    """Everything one cell produced."""

    stdout: str = ""
    stderr: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    payload: list[dict[str, Any]] = field(default_factory=list)  # pager output of `obj?`

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """stdout, stderr and text/plain of results and displays, in order."""
        parts = []
        for out in self.outputs:
            if out["type"] == "stream":
                parts.append(out["text"])
            elif "data" in out:
                parts.append(out["data"].get("text/plain", ""))
            elif out["type"] == "error":
                parts.append(f"{out['ename']}: {out['evalue']}")
        return "".join(parts)

    def check(self) -> CellResult:
        """Raise with the kernel's traceback if the cell failed."""
        if self.error is not None:
            raise AssertionError("cell failed:\n" + "\n".join(self.error["traceback"]))
        return self


class KernelSession:
    """One running kernel with the sci_ext extension loaded."""

    def __init__(self, env: dict[str, str], cwd: Path, load_extension: bool = True) -> None:
        self.km = KernelManager(kernel_name="python3")
        # Run the kernel with this interpreter so it sees the same packages.
        self.km.kernel_spec.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        if load_extension:
            self.run("%load_ext sci_ext").check()

    def run(
        self,
        code: str,
        timeout: float = 120,
        on_stream: Callable[[CellResult], None] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CellResult:
        """Execute ``code`` as one cell and collect its outputs.

        ``on_stream(result_so_far)`` is called after every stdout/stderr message, while
        the cell still runs (tests use it to interrupt the kernel at the right moment).
        ``metadata``: the execute request's metadata, as JupyterLab sends it (the cell's
        metadata, e.g. ``{"tags": ["raises-exception"]}``, and its ``cellId``).
        """
        if metadata is None:
            msg_id = self.kc.execute(code, store_history=True, allow_stdin=False)
        else:
            content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                       "allow_stdin": False, "stop_on_error": True}  # fmt: skip
            msg = self.kc.session.msg("execute_request", content, metadata=metadata)
            self.kc.shell_channel.send(msg)
            msg_id = msg["header"]["msg_id"]
        res = CellResult()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish in {timeout}s: {code[:80]!r}")
            try:
                msg = self.kc.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    res.stdout += content["text"]
                else:
                    res.stderr += content["text"]
                res.outputs.append({"type": "stream", "name": content["name"], "text": content["text"]})
                if on_stream is not None:
                    on_stream(res)
            elif kind == "display_data":
                res.displays.append(content["data"])
                res.outputs.append({"type": "display_data", "data": content["data"]})
            elif kind == "execute_result":
                res.result = content["data"]
                res.outputs.append({"type": "execute_result", "data": content["data"]})
            elif kind == "error":
                res.error = content
                res.outputs.append({"type": "error", **content})
            elif kind == "status" and content["execution_state"] == "idle":
                break
        # IPython reports a UsageError on stderr only; the reply still says "error".
        while True:
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        res.payload = content.get("payload", [])
        if content.get("status") == "error" and res.error is None:
            res.error = {
                "ename": content.get("ename", ""),
                "evalue": content.get("evalue", ""),
                "traceback": content.get("traceback", []),
            }
        return res

    def adopt(self, env: dict[str, str], spawned_with: dict[str, str], cwd: Path, load_extension: bool = True) -> None:
        """Make a kernel started for another test look started for this one.

        The kernel (started with ``spawned_with``, sci_ext not yet imported) gets this
        test's environment and working directory in a cell kept out of the history,
        then ``%load_ext sci_ext`` runs as the first cell, as in a kernel started here.
        """
        changed = {k: v for k, v in env.items() if spawned_with.get(k) != v}
        removed = sorted(set(spawned_with) - set(env))
        code = (
            "import os as _sci_os\n"
            f"_sci_os.environ.update({changed!r})\n"
            f"[_sci_os.environ.pop(_k, None) for _k in {removed!r}]\n"
            f"_sci_os.chdir({str(cwd)!r})\n"
            "del _sci_os\n"
        )
        reply = self.kc.execute_interactive(code, store_history=False, silent=True, timeout=60)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"could not hand the kernel to this test: {reply['content']}")
        # A restart (the notebook's button) starts the new process with this test's env and cwd.
        assert self.km._launch_args is not None
        self.km._launch_args.update(env=dict(env), cwd=str(cwd))
        if load_extension:
            self.run("%load_ext sci_ext").check()

    #: Modules a reset imports again: sci_ext (module-level state) and prometheus_client (sci_ext
    #: registers into its default registry), so the next test meets them as a new kernel would.
    #: The LLM SDKs stay imported (importing them again cost 1.5 s of CPU per test): unloading
    #: sci_ext restores their methods, and the next ``%load_ext`` patches them as it patches an SDK a
    #: user imported first.  The import hook path (SDK imported after ``%load_ext``) is the one
    #: each module's first test takes, in a kernel that never imported them.
    RESET_MODULES = ("sci_ext", "prometheus_client")

    def reset(self, env: dict[str, str], cwd: Path, load_extension: bool = True) -> None:
        """Hand this kernel, used by an earlier test, to the next test as if it were new.

        ``%unload_ext sci_ext`` (which undoes its hooks, magics and threads), every module of
        :data:`RESET_MODULES` forgotten, the user namespace and history reset (a new session:
        ``In``, ``Out``, ``_`` and the execution count start again), ``os.environ`` and the
        working directory replaced by the test's; then ``%load_ext sci_ext`` as the first cell.
        """
        code = (
            "def _sci_reset():\n"
            "    import os, sys\n"
            "    ip = get_ipython()\n"
            "    if 'sci_ext' in ip.extension_manager.loaded:\n"
            "        ip.extension_manager.unload_extension('sci_ext')\n"
            f"    prefixes = {self.RESET_MODULES!r}\n"
            "    for name in [m for m in sys.modules if m.split('.')[0] in prefixes]:\n"
            "        del sys.modules[name]\n"
            f"    os.environ.clear(); os.environ.update({dict(env)!r})\n"
            f"    os.chdir({str(cwd)!r})\n"
            "    ip.reset(new_session=True)\n"
            "_sci_reset()\n"
        )
        reply = self.kc.execute_interactive(code, store_history=False, silent=True, timeout=60)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"could not reset the kernel for this test: {reply['content']}")
        assert self.km._launch_args is not None
        self.km._launch_args.update(env=dict(env), cwd=str(cwd))
        if load_extension:
            self.run("%load_ext sci_ext").check()

    def interrupt(self) -> None:
        """Send SIGINT, as the notebook's stop button does."""
        self.km.interrupt_kernel()

    def close(self, graceful: bool = True) -> None:
        """Stop the kernel and its channels: asked to shut down (its exit handlers run), or
        killed at once (``graceful=False``)."""
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=not graceful)


def kernel_env(base: dict[str, str]) -> dict[str, str]:
    """The environment of a test kernel: ``base`` plus this checkout on sys.path."""
    env = dict(base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env
