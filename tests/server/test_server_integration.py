"""End to end: a real ``jupyter server``, a real kernel over its websocket, a real Prometheus.

The server runs as a subprocess on a free loopback port with isolated Jupyter
directories; the kernel runs ``%load_ext sci_ext``, a ``%%cached`` cell and a failing
``%%guarded`` cell; ``/sci/metrics`` must show that kernel's counters (and pass
``promtool check metrics``), ``/sci/api/status`` its error with the correlation id, and
``/usr/bin/prometheus`` must scrape the endpoint with a bearer API key.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from live_server import LiveServer, free_port, http
from server_fixtures import promtool_check

pytestmark = [pytest.mark.slow, pytest.mark.kernel]


def _sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
            found = True
    assert found, f"no sample {name}{labels} in the exposition"
    return total


def _wait(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture
def live(tmp_path: Path, sci_env):
    server = LiveServer(tmp_path / "jupyter").start()
    yield server
    server.stop()


@pytest.fixture
def kernel_run(live: LiveServer):
    """A kernel with %load_ext sci_ext, one %%cached and one failing %%guarded cell."""
    kernel_id = live.start_kernel()
    ws = live.kernel(kernel_id)
    try:
        out = ws.execute("%load_ext sci_ext")
        assert out["status"] == "ok", out
        env = ws.execute(
            "import os; print(os.environ.get('PROMETHEUS_MULTIPROC_DIR'), os.environ.get('SCI_EXT_KERNEL_ID'), os.getpid())"
        )
        multiproc_dir, seen_id, pid = env["stdout"].split()
        cached = ws.execute("%%cached integration_cell\nanswer = 21 * 2\nprint(answer)")
        assert cached["status"] == "ok" and "42" in cached["stdout"], cached
        failed = ws.execute('%%guarded flaky_service --retries 1\nraise ValueError("boom from the integration test")')
        assert failed["status"] == "error", failed
        yield {
            "id": kernel_id,
            "ws": ws,
            "dir": multiproc_dir,
            "seen_id": seen_id,
            "pid": int(pid),
            "failed_count": failed["execution_count"],
        }
    finally:
        ws.close()


def test_kernel_metrics_and_errors_reach_the_server(live: LiveServer, kernel_run, sci_env) -> None:
    state = sci_env["XDG_STATE_HOME"] / "sci_ext"
    # the server put the multiprocess dir and the kernel id into the kernel's launch environment
    assert kernel_run["dir"] == str(state / "prometheus")
    assert kernel_run["seen_id"] == kernel_run["id"]
    assert list(Path(kernel_run["dir"]).glob(f"*_{kernel_run['pid']}.db")), "the kernel wrote no metrics file"

    scrape = live.get("/sci/metrics")
    assert scrape.status == 200
    text = scrape.text
    assert _sample(text, "sci_cell_duration_seconds_count") >= 3  # load_ext, env, cached, guarded
    assert _sample(text, "sci_cell_errors_total") >= 1
    assert _sample(text, "sci_cache_requests_total", result="miss") >= 1
    assert _sample(text, "sci_auth_failures_total") >= 0  # the server's own counter, once
    assert text.count("# TYPE sci_cell_duration_seconds histogram") == 1
    assert "http_request_duration_seconds" in text  # jupyter_server's own registry, once
    promtool_check(text)

    # the status is sampled in the background (SciExt.sampling_interval = 0.5 s here): poll it
    def status_caught_up():
        result = live.get("/sci/api/status")
        assert result.status == 200
        data = result.json()
        return data if data["cells"]["total"] >= 3 and data["cells"]["errors"] >= 1 else None

    body = _wait(status_caught_up, 20, "the status to show the cells")
    kernels = {k["id"]: k for k in body["kernels"]}
    assert kernel_run["id"] in kernels and kernels[kernel_run["id"]]["execution_state"] in ("idle", "busy")
    assert kernels[kernel_run["id"]]["last_activity"]
    errors = [e for e in body["errors"] if "boom from the integration test" in e.get("message", "")]
    assert errors, body["errors"]
    error = errors[0]
    assert re.fullmatch(r"[0-9a-f]{32}", error["correlation_id"] or "")
    assert error["kernel_id"] == kernel_run["id"]
    # the same correlation id is in the kernel's JSON log line of that cell
    logs = state / "logs" / "sci_ext.jsonl"
    lines = [json.loads(x) for x in logs.read_text().splitlines() if x.strip()] if logs.exists() else []
    assert any(x.get("correlation_id") == error["correlation_id"] for x in lines), "no log line with the error's id"

    health = live.get("/sci/health")
    assert health.status in (200, 503) and set(health.json()) >= {"status", "checks", "version"}

    # a kernel that dies mid-scrape: scrapes keep answering, its files are compacted, its counts stay
    before = _sample(live.get("/sci/metrics").text, "sci_cell_duration_seconds_count")
    directory = Path(kernel_run["dir"])
    os.kill(kernel_run["pid"], signal.SIGKILL)
    # scrapes keep answering while the kernel dies and its files get compacted
    for _ in range(10):
        result = live.get("/sci/metrics")
        assert result.status == 200
        time.sleep(0.1)
    _wait(lambda: not list(directory.glob(f"*_{kernel_run['pid']}.db")), 30, "compaction of the dead kernel's files")
    assert (directory / "histogram_archive.db").exists()
    after = _sample(live.get("/sci/metrics").text, "sci_cell_duration_seconds_count")
    assert after >= before  # the dead kernel's counters still count


def test_endpoints_refuse_without_auth(live: LiveServer) -> None:
    from sci_ext.core.security import get_security_manager

    manager = get_security_manager()
    wrong_scope = manager.generate_api_key("other", ("secrets:read",))
    expired = manager.generate_api_key("old", ("metrics:read",), 0.01)
    revoked = manager.generate_api_key("gone", ("metrics:read",))
    manager.revoke_api_key(revoked)
    time.sleep(0.05)
    first = live.get("/sci/metrics", auth=False)
    assert first.status == 401 and first.headers.get("www-authenticate", "").startswith("Bearer")
    codes = []
    for path in ("/sci/health", "/sci/metrics", "/sci/api/status"):
        for header in (
            {},
            {"Authorization": "Bearer sci_000000000000_" + "A" * 43},
            {"Authorization": f"Bearer {expired}"},
            {"Authorization": f"Bearer {revoked}"},
            {"Authorization": f"Bearer {wrong_scope}"},
            {"Authorization": "token not-the-jupyter-token"},
        ):
            result = live.get(path, headers=header, auth=False)
            codes.append(result.status)
            assert result.status in (401, 403), (path, header, result.status, result.text)
            if result.status == 403:  # wrong scope, or the lockout after 10 failures a minute
                assert "scope" in result.text or "locked out" in result.text, result.text
            assert "sci_" not in result.text and "checks" not in result.text
    # review R1: strikes are keyed on (client, presented key id) and anonymous requests are no
    # strike, so none of the 18 failures above locks out a good key from the same address
    good = manager.generate_api_key("prom", ("metrics:read",))
    assert live.get("/sci/metrics", headers={"Authorization": f"Bearer {good}"}, auth=False).status == 200
    # more than 10 failures a minute with one presented key id: that pair is locked out
    bad = {"Authorization": "Bearer sci_000000000000_" + "B" * 43}
    repeated = [live.get("/sci/metrics", headers=bad, auth=False).status for _ in range(12)]
    assert repeated[0] == 401 and repeated[-1] == 403
    assert live.get("/sci/metrics", headers={"Authorization": f"Bearer {good}"}, auth=False).status == 200
    # Jupyter's own auth still works for the user
    assert live.get("/sci/api/status").status == 200
    # and so does `jupyter sci health --url` with the Jupyter token from the environment
    run = _sci("health", "--url", live.base, env={**os.environ, "JUPYTER_TOKEN": live.token})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "metrics_dir" in run.stdout
    # An anonymous flood: counted, but not one audit record (three fsyncs) each. The server
    # audits the first failure of the window at once and writes the sum when it stops.
    audit = manager.audit_log
    missing = [r for r in audit.records() if r["details"].get("reason") == "missing"]
    assert len(missing) == 1 and missing[0]["event"] == "auth.failure", missing
    assert {live.get("/sci/metrics", auth=False).status for _ in range(40)} == {401}
    assert [r for r in audit.records() if r["details"].get("reason") == "missing"] == missing
    live.stop()
    (summary,) = [r["details"] for r in audit.records() if r["event"] == "auth.failure_summary"]
    assert summary["count"] == 4 + 40 and summary["client"] == missing[0]["details"]["client"], summary
    assert manager.verify_audit().ok


@pytest.mark.skipif(not shutil.which("prometheus"), reason="needs /usr/bin/prometheus (Debian package prometheus)")
def test_real_prometheus_scrapes_with_bearer_key(live: LiveServer, kernel_run, tmp_path: Path) -> None:
    # the key comes from the CLI, as a user would make it
    cli = subprocess.run(
        [sys.executable, "-m", "sci_ext", "apikey", "create", "--scope", "metrics:read"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert cli.returncode == 0, cli.stderr
    token = cli.stdout.strip()
    assert token.startswith("sci_") and token not in cli.stderr

    port = free_port()
    token_file = tmp_path / "sci_ext.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    # the scrape config is the docs' (docs/observability.md, "Monitoring"), pointed at this server and token file
    page = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    monitoring = page[page.index("## Monitoring") :]
    block = monitoring[monitoring.index("```yaml\n") + len("```yaml\n") :]
    block = block[: block.index("```")]
    assert "/etc/prometheus/sci_ext.token" in block and "127.0.0.1:8888" in block
    block = block.replace("/etc/prometheus/sci_ext.token", str(token_file)).replace(
        "127.0.0.1:8888", f"127.0.0.1:{live.port}"
    )
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n" + block)
    check = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen(
        [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "prometheus.log", "wb"),
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:

        def target_up():
            try:
                targets = http(api + "/targets").json()["data"]["activeTargets"]
            except Exception:
                return None
            return [t for t in targets if t["health"] == "up"]

        up = _wait(target_up, 60, "the sci_ext target to be up")
        assert up[0]["scrapeUrl"].endswith("/sci/metrics")

        def cells():
            query = urllib.parse.quote("sum(sci_cell_duration_seconds_count)")
            result = http(f"{api}/query?query={query}").json()["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        assert _wait(cells, 60, "a cell count in Prometheus") >= 3
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _sci(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sci_ext", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or os.environ.copy(),
    )


def test_cli_health_url_against_a_server_with_unusable_state_dir(tmp_path: Path, sci_env) -> None:
    blocker = sci_env["XDG_STATE_HOME"] / "sci_ext"
    blocker.write_text("a file where the state directory should be")
    server = LiveServer(tmp_path / "jupyter").start()  # the server starts all the same
    try:
        result = server.get("/sci/health")
        assert result.status == 503
        failing = {c["name"]: c["detail"] for c in result.json()["checks"] if c["status"] == "failing"}
        assert str(blocker) in failing["metrics_dir"]
        assert server.get("/sci/metrics").status == 200  # metrics still answer

        env = {**os.environ, "SCI_EXT_TOKEN": server.token}
        failing_run = _sci("health", "--url", server.base + "/", env=env)
        assert failing_run.returncode == 1, failing_run.stdout + failing_run.stderr
        assert "failing" in failing_run.stdout and "metrics_dir" in failing_run.stdout
        assert server.token not in failing_run.stdout + failing_run.stderr

        as_json = _sci("health", "--url", server.base, "--token", server.token, "--json")
        assert json.loads(as_json.stdout)["status"] == "failing"

        refused = _sci("health", "--url", server.base, "--token", "wrong-token")
        assert refused.returncode == 1
        assert "HTTP 401" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        assert "wrong-token" not in refused.stderr
    finally:
        server.stop()
    unreachable = _sci("health", "--url", server.base, "--http-timeout", "2")
    assert unreachable.returncode == 1 and "unreachable" in unreachable.stderr
    assert _sci("health", "--url", "ftp://example.org/").returncode == 2
