"""``scripts/dev.sh lab``: the URL JupyterLab prints opens the quickstart, and running it leaves git clean.

The script's own JupyterLab arguments are read from it and run here with a real
``jupyter lab`` (dev.sh itself would reinstall the virtualenv); the oracle is the URL the
server prints and what the server answers for it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kernel_harness import REPO
from live_server import SERVER_MAIN

DEV = REPO / "scripts" / "dev.sh"


def _lab_args() -> list[str]:
    line = next(ln for ln in DEV.read_text().splitlines() if '"$VENV/bin/jupyter" lab' in ln)
    return [a for a in shlex.split(line.split(" lab ", 1)[1]) if a.startswith("--")]


def test_dev_sh_runs_a_git_ignored_copy() -> None:
    text = DEV.read_text()
    assert "cp notebooks/01_quickstart.ipynb notebooks/run/" in text
    ignored = subprocess.run(["git", "check-ignore", "-q", "notebooks/run/01_quickstart.ipynb"], cwd=REPO, check=False)
    assert ignored.returncode == 0  # a run's outputs and autosaves never show in `git status`


def test_printed_url_opens_the_quickstart(tmp_path: Path) -> None:
    args = _lab_args()
    assert any(a.startswith("--LabApp.default_url=/lab/tree/notebooks/run/01_quickstart.ipynb") for a in args), args
    root = tmp_path / "repo"
    (root / "notebooks" / "run").mkdir(parents=True)
    (root / "notebooks" / "run" / "01_quickstart.ipynb").write_bytes(
        (REPO / "notebooks" / "01_quickstart.ipynb").read_bytes()
    )
    port = 20000 + os.getpid() % 10000
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update({"JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")})
    proc = subprocess.Popen(
        [sys.executable, SERVER_MAIN, "jupyterlab", "--no-browser", f"--port={port}", "--port-retries=0",
         "--ip=127.0.0.1", f"--ServerApp.root_dir={root}", "--IdentityProvider.token=t0k",
         *args, *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = None
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+/\S+)", line)
            if found and "token=" in found.group(1):
                url = found.group(1)
        assert url is not None, "no URL printed"
        assert "/lab/tree/notebooks/run/01_quickstart.ipynb?token=" in url, url
        real = url.split("?token=")[0] + "?token=t0k"  # the log masks the token
        body = ""
        while not body and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(real, timeout=30) as resp:  # noqa: S310  # nosec B310  # our server
                    body = resp.read().decode()
            except OSError:
                time.sleep(0.5)  # printed while the server still starts up
        assert "JupyterLab" in body, body[:300]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
