"""A real JupyterLab and a real Chromium for the browser tests (the harness; fixtures in conftest.py).

* :class:`LabServer` starts ``jupyter lab`` on a free loopback port with private
  ``JUPYTER_*``/``JUPYTERLAB_*``/``XDG_*`` directories, a token, ``--allow-root`` when
  root, and user settings (news off, the Sci Health refresh interval at 1 s).  Kernels
  it starts inherit those directories, so kernels and the server share
  ``core.state_dir`` as in real use.  ``stop()`` asks ``/api/shutdown`` (kernels too).
* ``browser``: Debian's Chromium (``/usr/bin/chromium``, ``SCI_EXT_CHROMIUM`` overrides)
  driven by Python playwright; no browser download.
* :class:`LabPage` helpers: open JupyterLab or a notebook, run cells, read outputs,
  take screenshots into ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from live_server import SERVER_MAIN

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = os.environ.get("SCI_EXT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAB_START_TIMEOUT = 90.0
UI_TIMEOUT_MS = 60_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def labextension_installed() -> Path | None:
    """The ``sci-ext`` labextension directory JupyterLab will load, if any."""
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        candidate = Path(base) / "sci-ext" / "package.json"
        if candidate.is_file():
            return candidate.parent
    return None


def notebook_json(cells: list[str]) -> dict[str, Any]:
    """An nbformat 4 notebook with these code cells and the python3 kernel."""
    return {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": src}
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class LabServer:
    """One ``jupyter lab`` process on a free loopback port, with private directories."""

    def __init__(
        self,
        base: Path,
        *,
        server_extension: bool = True,
        settings: dict[str, dict[str, Any]] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.base = base
        self.root = base / "root"
        self.port = _free_port()
        self.token = "sci-browser-" + os.urandom(8).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "jupyter-lab.log"
        dirs = {
            "JUPYTER_CONFIG_DIR": base / "jupyter_config",
            "JUPYTER_DATA_DIR": base / "jupyter_data",
            "JUPYTER_RUNTIME_DIR": base / "jupyter_runtime",
            "IPYTHONDIR": base / "ipython",
            "JUPYTERLAB_SETTINGS_DIR": base / "lab_settings",
            "JUPYTERLAB_WORKSPACES_DIR": base / "lab_workspaces",
            "XDG_CONFIG_HOME": base / "xdg_config",
            "XDG_CACHE_HOME": base / "xdg_cache",
            "XDG_STATE_HOME": base / "xdg_state",
            "XDG_DATA_HOME": base / "xdg_data",
        }
        for path in [self.root, *dirs.values()]:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        # This checkout's own build of the labextension, when it has one, outranks the installed
        # one (JUPYTER_PATH comes first in JupyterLab's search path): a worktree tests its build.
        built = REPO / "sci_ext" / "labextension"
        own_build: Path | None = None
        if (built / "package.json").is_file():
            own_build = base / "jupyter_path"
            (own_build / "labextensions").mkdir(parents=True, exist_ok=True)
            (own_build / "labextensions" / "sci-ext").symlink_to(built.resolve())
        self.state_dir = dirs["XDG_STATE_HOME"] / "sci_ext"
        # Explicit either way: the user config dir outranks the sys-prefix file pip installs.
        config = {"ServerApp": {"jpserver_extensions": {"sci_ext": server_extension}}}
        (dirs["JUPYTER_CONFIG_DIR"] / "jupyter_server_config.json").write_text(json.dumps(config))
        all_settings = {
            "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
            "sci-ext:plugin": {"refreshInterval": 1},
            **(settings or {}),
        }
        for plugin_id, values in all_settings.items():
            package, _, plugin = plugin_id.partition(":")
            path = dirs["JUPYTERLAB_SETTINGS_DIR"] / package / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCI_EXT_", "JUPYTER", "PROMETHEUS_"))}
        env.update({k: str(v) for k, v in dirs.items()})
        if own_build is not None:
            env["JUPYTER_PATH"] = str(own_build)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        self.env = env
        self.args = [
            sys.executable,
            SERVER_MAIN,  # python -m jupyterlab, without start-up costs no test needs
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--SciExt.sampling_interval=0.5",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            *(extra_args or []),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ process
    def start(self) -> LabServer:
        """Start the server and wait until ``/api/status`` answers (fails with the log tail)."""
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.args, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + LAB_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, _ = self.get("/api/status")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        pytest.fail(f"jupyter lab did not answer /api/status within {LAB_START_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Shut the server down (kernels included); kill its process group if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            self.request("POST", "/api/shutdown")
        except OSError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server log."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # --------------------------------------------------------------------- http
    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """An authenticated request to the server: ``(status, parsed JSON or text)``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as response:  # noqa: S310 - loopback URL we built
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path: str) -> tuple[int, Any]:
        """``GET path``: ``(status, body)``."""
        return self.request("GET", path)

    def lab_url(self, path: str = "") -> str:
        """The URL of ``/lab`` (or ``/lab/tree/<path>``) with the token."""
        tail = f"/tree/{path}" if path else ""
        return f"{self.url}/lab{tail}?token={self.token}"

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """Write a notebook with these code cells into the server's root directory."""
        path = self.root / name
        path.write_text(json.dumps(notebook_json(cells), indent=1))
        return path


class LabPage:
    """A playwright page on a :class:`LabServer`, with JupyterLab helpers."""

    def __init__(self, page: Any, lab: LabServer) -> None:
        self.page = page
        self.lab = lab
        self.status_requests: list[float] = []
        page.on("request", self._on_request)

    def release(self) -> None:
        """Leave the tab as the next test expects it: blank, with no listener or route of this test."""
        self.page.remove_listener("request", self._on_request)
        self.page.unroute_all(behavior="ignoreErrors")
        self.page.goto("about:blank")

    def _on_request(self, request: Any) -> None:
        if "/sci/api/status" in request.url:
            self.status_requests.append(time.monotonic())

    def open(self, path: str = "") -> LabPage:
        """Load JupyterLab (or a notebook in it) and wait until the shell is ready."""
        self.page.goto(self.lab.lab_url(path), wait_until="domcontentloaded")
        self.page.wait_for_selector(".jp-LabShell", timeout=UI_TIMEOUT_MS)
        self.page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=UI_TIMEOUT_MS)
        if path.endswith(".ipynb"):
            self.wait_kernel_ready(path)
        return self

    def wait_kernel_ready(self, path: str, timeout: float = UI_TIMEOUT_MS / 1000) -> str:
        """Wait until the notebook's kernel runs, the page's websocket is connected to it
        (the server counts the connection) and the page shows it idle; returns its id.

        (The page's execution indicator says "idle" before the session even exists, and a
        cell run while the kernel is still connecting is dropped.)
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, sessions = self.lab.get("/api/sessions")
            kernels = [s["kernel"] for s in sessions if isinstance(sessions, list) and s.get("path") == path]
            if kernels:
                _, kernel = self.lab.get(f"/api/kernels/{kernels[0]['id']}")
                if isinstance(kernel, dict) and kernel.get("connections", 0) >= 1:
                    if kernel.get("execution_state") == "idle":
                        self.wait_kernel_idle()
                        return str(kernel["id"])
            self.page.wait_for_timeout(250)
        raise AssertionError(f"the kernel of {path} was not ready in {timeout} s:\n{self.lab.log_tail()}")

    def wait_kernel_idle(self) -> None:
        """Wait until the current notebook's execution indicator shows idle."""
        self.page.wait_for_selector(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']",
            timeout=UI_TIMEOUT_MS,
        )

    def run_cell(self, index: int, *, expect_count: int | None = None, timeout_ms: int = UI_TIMEOUT_MS) -> str:
        """Run code cell ``index`` of the open notebook (toolbar's run button); returns its output text.

        Waits until the cell's prompt shows an execution count (``expect_count`` if given)
        and the kernel is idle again.
        """
        cell = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(index)
        cell.locator(".jp-InputPrompt").click()  # selects the cell
        self.page.locator(
            ".jp-NotebookPanel:not(.lm-mod-hidden) jp-button[data-command='notebook:run-cell-and-select-next']"
        ).click()
        prompt = cell.locator(".jp-InputArea-prompt")
        count = str(expect_count) if expect_count is not None else r"\d+"
        pattern = re.compile(r"\[" + count + r"\]")
        deadline = time.monotonic() + timeout_ms / 1000
        while not pattern.search(prompt.inner_text()):
            if time.monotonic() > deadline:
                raise AssertionError(f"cell {index} did not finish: prompt {prompt.inner_text()!r}")
            self.page.wait_for_timeout(100)
        self.wait_kernel_idle()
        return cell.locator(".jp-OutputArea").inner_text()

    def status_requests_between(self, start: float, end: float) -> int:
        """How many ``/sci/api/status`` requests the page started in ``[start, end]`` (monotonic)."""
        return sum(1 for t in self.status_requests if start <= t <= end)

    def set_hidden(self, hidden: bool) -> None:
        """Emulate the tab being hidden/shown: override ``document.visibilityState`` and
        dispatch ``visibilitychange`` (what the browser does when a tab is switched away)."""
        self.page.evaluate(
            """(hidden) => {
                const state = hidden ? 'hidden' : 'visible';
                Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => state});
                Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
                document.dispatchEvent(new Event('visibilitychange'));
            }""",
            hidden,
        )

    def resize_left_area(self, width: int) -> None:
        """Drag the handle between the left sidebar panel and the main area to ``width`` px."""
        handle = self.page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
        box = handle.bounding_box()
        assert box is not None, "the left area's split handle is not visible"
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(width, y, steps=5)
        self.page.mouse.up()

    def screenshot(self, name: str, path: Path | None = None) -> Path:
        """Save a screenshot (``tests/artifacts/<name>.png`` unless ``path``)."""
        target = path or ARTIFACTS / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(target))
        return target
