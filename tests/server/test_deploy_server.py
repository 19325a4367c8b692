"""`jupyter sci deploy` against real servers: a candidate server's checks, and zero downtime.

A real ``jupyter server`` with sci_ext runs a kernel over its websocket while a deploy
switches the config and a rollback switches it back; a bounded loop of requests to
``/sci/health`` runs the whole time.  Both the server and the kernel must see each
switch through hot reload, with no failed request and no failed cell.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from live_server import LiveServer

from sci_ext.deploy.slots import SlotStore

REPO = Path(__file__).resolve().parents[2]
FAST_RELOAD = {"SCI_EXT_CORE__RELOAD_INTERVAL_SECONDS": "0.3"}

pytestmark = pytest.mark.slow


def sci(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **FAST_RELOAD}
    return subprocess.run(
        [sys.executable, "-m", "sci_ext", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_a_candidate_that_fails_its_health_check_is_refused(sci_env):
    project = sci_env["project"]
    (project / "good.toml").write_text('[core]\nenvironment = "good"\n')
    assert sci("deploy", str(project / "good.toml"), "--no-candidate").returncode == 0
    store = SlotStore(
        sci_env["XDG_STATE_HOME"] / "sci_ext" / "deploy", sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"
    )
    before = (store.active(), store.read_slot("blue"), store.read_slot("green"), store.target.read_text())
    blocked = project / "not-a-dir"
    blocked.write_text("a file where a directory should be\n")
    (project / "bad.toml").write_text(f'[core]\nstate_dir = "{blocked}"\n')
    res = sci("deploy", str(project / "bad.toml"))
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if not line.startswith("deploy: ")]
    assert len(errors) == 1 and "candidate" in errors[0] and "failing" in errors[0], res.stderr
    assert (store.active(), store.read_slot("blue"), store.read_slot("green"), store.target.read_text()) == before
    # Rollback still goes to the config active before the good deploy.
    assert sci("rollback").returncode == 0
    assert "good" not in store.target.read_text()


def test_deploy_and_rollback_with_zero_downtime(sci_env, tmp_path):
    env = {**os.environ, **FAST_RELOAD}
    server = LiveServer(tmp_path / "jupyter", env=env).start()
    stop = threading.Event()
    outcomes: list[int | str] = []

    def probe() -> None:
        for _ in range(20_000):  # bounded: at most 20k requests, ~20 ms apart
            if stop.is_set():
                return
            try:
                result = server.get("/sci/health")
                outcomes.append(result.status)
            except OSError as exc:
                outcomes.append(type(exc).__name__)
            time.sleep(0.02)

    def server_environment() -> str:
        return str(server.get("/sci/api/status").json().get("environment"))

    prober = threading.Thread(target=probe, daemon=True)
    try:
        kernel_id = server.start_kernel()
        ws = server.kernel(kernel_id)
        assert ws.execute("%load_ext sci_ext\nfrom sci_ext.core import get_config")["status"] == "ok"
        prober.start()
        cells: list[tuple[str, str]] = []

        def run_cells_until(expected: str, timeout: float = 120) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                out = ws.execute("print(get_config().core.environment)")
                cells.append((out["status"], out["stdout"].strip()))
                if out["stdout"].strip() == expected and server_environment() == expected:
                    return
                time.sleep(0.1)
            raise AssertionError(f"kernel/server did not see {expected!r}: last {cells[-1:]}, {server_environment()}")

        run_cells_until("development")
        new = sci_env["project"] / "green.toml"
        new.write_text('[core]\nenvironment = "green-test"\n')
        # The deploy runs in the background while the kernel keeps running cells.
        deploy = subprocess.Popen(
            [sys.executable, "-m", "sci_ext", "deploy", str(new)],
            env={**os.environ, "PYTHONPATH": str(REPO), **FAST_RELOAD},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while deploy.poll() is None:
            out = ws.execute("x = sum(range(1000)); print(get_config().core.environment)")
            cells.append((out["status"], out["stdout"].strip()))
        assert deploy.returncode == 0, deploy.stderr.read() if deploy.stderr else ""
        run_cells_until("green-test")
        assert sci("rollback").returncode == 0
        run_cells_until("development")
        stop.set()
        prober.join(30)
        ws.close()
    finally:
        stop.set()
        server.stop()
    failed_requests = [o for o in outcomes if o != 200]
    failed_cells = [c for c in cells if c[0] != "ok"]
    print(
        f"zero-downtime: {len(outcomes)} requests, {len(failed_requests)} failed; {len(cells)} cells, {len(failed_cells)} failed"
    )
    assert len(outcomes) > 50 and not failed_requests, failed_requests[:5]
    assert len(cells) > 5 and not failed_cells
    seen = [c[1] for c in cells]
    assert "green-test" in seen and seen[-1] == "development"
