"""The server extension's endpoints through a real jupyter_server (pytest-jupyter's ``jp_fetch``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from server_fixtures import *  # noqa: F403
from server_fixtures import fetch, promtool_check

NO_AUTH = {"Authorization": ""}


@pytest.fixture
def sci_config() -> dict:
    return {"sampling_interval": 0.2}


@pytest.fixture
def jp_server_config(sci_config: dict) -> dict:
    return {"ServerApp": {"jpserver_extensions": {"sci_ext": True}}, "SciExt": sci_config}


def _audit_records(state: Path, event: str = "auth.failure") -> list[dict]:
    path = state / "sci_ext" / "audit" / "audit.jsonl"
    if not path.exists():
        return []
    return [r for r in (json.loads(line) for line in path.read_text().splitlines() if line) if r.get("event") == event]


def test_extension_is_loaded(jp_serverapp) -> None:
    ext = jp_serverapp.extension_manager.extensions["sci_ext"]
    assert ext.enabled
    apps = [p.app for p in ext.extension_points.values()]
    assert any(type(a).__name__ == "SciExt" for a in apps)


def test_health_with_jupyter_auth(jp_asyncio_loop, jp_fetch, sci_env) -> None:
    code, body, response = fetch(jp_asyncio_loop, jp_fetch, "sci", "health")
    assert code == 200, body
    report = json.loads(body)
    assert set(report) >= {"status", "checks", "version"}
    names = {c["name"]: c for c in report["checks"]}
    assert names["metrics_dir"]["status"] == "ok"
    metrics_dir = Path(names["metrics_dir"]["detail"])
    assert metrics_dir == sci_env["XDG_STATE_HOME"] / "sci_ext" / "prometheus"
    assert oct(metrics_dir.stat().st_mode & 0o777) == oct(0o700)
    assert response.headers["Content-Type"].startswith("application/json")


def test_health_unauthenticated_is_401_without_data(jp_asyncio_loop, jp_fetch, sci_env) -> None:
    code, body, response = fetch(jp_asyncio_loop, jp_fetch, "sci", "health", headers=NO_AUTH)
    assert code == 401
    assert json.loads(body) == {"message": "authentication required"}
    assert "checks" not in body
    records = _audit_records(sci_env["XDG_STATE_HOME"])
    assert [r["details"]["reason"] for r in records] == ["missing"]


@pytest.mark.parametrize("sci_config", [{"health_allow_unauthenticated": True, "sampling_interval": 0.2}])
def test_health_open_for_probes(jp_asyncio_loop, jp_fetch, sci_env) -> None:
    code, body, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "health", headers=NO_AUTH)
    assert code == 200
    assert json.loads(body)["status"] in ("ok", "degraded")
    # metrics and status stay closed
    assert fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics", headers=NO_AUTH)[0] == 401
    assert fetch(jp_asyncio_loop, jp_fetch, "sci", "api", "status", headers=NO_AUTH)[0] == 401


def test_metrics_with_jupyter_auth_pass_promtool(jp_asyncio_loop, jp_fetch) -> None:
    code, body, response = fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics")
    assert code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "sci_auth_failures_total" in body
    # jupyter_server's own metrics (its registry) are included exactly once
    assert body.count("# TYPE http_request_duration_seconds histogram") == 1
    promtool_check(body)
    # a non-counter "_total" of another extension is served without the suffix promtool rejects
    assert "terminal_currently_running_total" not in body


def test_status_shape_and_kernels(jp_asyncio_loop, jp_fetch) -> None:
    started = jp_asyncio_loop.run_until_complete(jp_fetch("api", "kernels", method="POST", body="{}"))
    kernel_id = json.loads(started.body)["id"]
    try:
        code, body, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "api", "status")
        assert code == 200
        status = json.loads(body)
        for key in ("schema", "version", "time", "status", "checks", "resources", "kernels", "cache", "errors"):
            assert key in status, key
        res = status["resources"]
        assert 0 <= res["cpu_percent"] <= 100 and res["cpu_count"] >= 1
        assert res["memory"]["total_bytes"] > 0 and res["memory"]["limit_source"] in ("cgroup", "host")
        assert res["disk"]["total_bytes"] > 0
        assert res["gpus"] == []  # no GPU on this machine (the NVML path is tested with a mock)
        kernels = {k["id"]: k for k in status["kernels"]}
        assert kernel_id in kernels
        assert kernels[kernel_id]["execution_state"] in ("starting", "idle", "busy")
        assert kernels[kernel_id]["last_activity"]
    finally:
        jp_asyncio_loop.run_until_complete(jp_fetch("api", "kernels", kernel_id, method="DELETE"))


# ------------------------------------------------------------------ API keys
def _manager():
    from sci_ext.core.security import get_security_manager

    return get_security_manager()


def test_metrics_with_api_keys(jp_asyncio_loop, jp_fetch, sci_env) -> None:
    manager = _manager()
    good = manager.generate_api_key("prom", ("metrics:read",))
    wrong_scope = manager.generate_api_key("other", ("secrets:read",))
    expired = manager.generate_api_key("old", ("metrics:read",), 0.01)
    revoked = manager.generate_api_key("gone", ("metrics:read",))
    manager.revoke_api_key(revoked)
    time.sleep(0.05)

    def get(path: tuple[str, ...], token: str) -> tuple[int, str]:
        code, body, _ = fetch(jp_asyncio_loop, jp_fetch, *path, headers={"Authorization": token})
        return code, body

    code, body = get(("sci", "metrics"), f"Bearer {good}")
    assert code == 200 and "sci_auth_failures_total" in body
    cases = {
        "wrong": (f"Bearer {good[:-4]}AAAA", 401),
        "expired": (f"Bearer {expired}", 401),
        "revoked": (f"Bearer {revoked}", 401),
        "scope": (f"Bearer {wrong_scope}", 403),
        "malformed": ("Bearer", 401),
        "huge": ("Bearer " + "A" * 20_000, 401),
        "odd bytes": ("Bearer sk\xe9\xffevil", 401),
    }
    before = len(_audit_records(sci_env["XDG_STATE_HOME"]))
    for name, (header, want) in cases.items():
        code, body = get(("sci", "metrics"), header)
        assert code == want, (name, code, body)
        assert "sci_" not in body, name  # no data
    records = _audit_records(sci_env["XDG_STATE_HOME"])[before:]
    assert len(records) == len(cases)  # one bounded record each
    for record in records:
        assert record["details"]["client"].startswith("http:") and len(record["details"]["client"]) <= 80
        assert len(json.dumps(record)) < 1000
    # the API key opens /sci/metrics only: health and status need Jupyter auth
    assert get(("sci", "health"), f"Bearer {good}")[0] == 401
    assert get(("sci", "api", "status"), f"Bearer {good}")[0] == 401
    # every failure is counted
    code, body = get(("sci", "metrics"), f"Bearer {good}")
    line = next(x for x in body.splitlines() if x.startswith("sci_auth_failures_total"))
    assert float(line.split()[-1]) >= len(cases) + 2


def test_lockout_after_repeated_failures(jp_asyncio_loop, jp_fetch) -> None:
    from sci_ext.core.security import SecurityManager, set_security_manager

    state = Path(os.environ["XDG_STATE_HOME"]) / "sci_ext"
    manager = SecurityManager(
        vault_path=Path(os.environ["XDG_DATA_HOME"]) / "sci_ext" / "vault.json",
        state_dir=state,
        max_auth_failures_per_minute=3,
        lockout_seconds=60,
    )
    set_security_manager(manager)
    try:
        good = manager.generate_api_key("prom", ("metrics:read",))
        codes = [
            fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics", headers={"Authorization": "Bearer nope"})[0]
            for _ in range(6)
        ]
        assert codes[0] == 401 and codes[-1] == 403
        assert (
            "locked out"
            in fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics", headers={"Authorization": "Bearer nope"})[1]
        )
        assert manager.lockout.lockouts == 1
        # review R1: the lockout is keyed on (client, presented key id): the right key still reads
        code, body, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics", headers={"Authorization": f"Bearer {good}"})
        assert code == 200 and "sci_" in body
        # requests without any credential are counted and audited, never a strike
        failures = manager.auth_failures_total
        anon = [fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics", headers={"Authorization": ""})[0] for _ in range(8)]
        assert set(anon) == {401} and manager.auth_failures_total == failures + 8
        assert manager.lockout.lockouts == 1
        code, _, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics", headers={"Authorization": f"Bearer {good}"})
        assert code == 200
    finally:
        set_security_manager(None)


# ------------------------------------------------------------------ bad input
@pytest.fixture
def unusable_state(sci_env, monkeypatch):
    blocker = sci_env["XDG_STATE_HOME"] / "sci_ext"
    blocker.write_text("a file where the state directory should be")
    return blocker


def test_unusable_state_dir_server_starts_health_failing(unusable_state, jp_asyncio_loop, jp_fetch) -> None:
    code, body, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "health")
    assert code == 503
    report = json.loads(body)
    assert report["status"] == "failing"
    failing = {c["name"]: c["detail"] for c in report["checks"] if c["status"] == "failing"}
    assert "metrics_dir" in failing and str(unusable_state) in failing["metrics_dir"]
    # metrics still answer (the server's own registry)
    code, body, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "metrics")
    assert code == 200 and "http_request_duration_seconds" in body


# ------------------------------------------------------------------ authorizer
from jupyter_server.auth import Authorizer  # noqa: E402


class DenySci(Authorizer):
    """An authorizer (as JupyterHub's would be) that lets users do anything but read ``sci``."""

    def is_authorized(self, handler, user, action, resource) -> bool:
        return resource != "sci"


@pytest.mark.parametrize(
    "jp_server_config",
    [{"ServerApp": {"jpserver_extensions": {"sci_ext": True}, "authorizer_class": DenySci}, "SciExt": {}}],
)
def test_authorizer_denies_sci(jp_asyncio_loop, jp_fetch) -> None:
    for path in (("sci", "health"), ("sci", "metrics"), ("sci", "api", "status")):
        code, body, _ = fetch(jp_asyncio_loop, jp_fetch, *path)
        assert code == 403, (path, code)
        assert json.loads(body) == {"message": "not authorized to read sci"}
    assert fetch(jp_asyncio_loop, jp_fetch, "api", "status")[0] == 200  # the rest of Jupyter is allowed


def test_single_flight_shares_one_computation() -> None:
    import asyncio
    import threading

    from sci_ext.server.sampler import SingleFlight, Worker

    calls = []
    gate = threading.Event()

    def slow() -> int:
        gate.wait(5)
        calls.append(1)
        return len(calls)

    worker = Worker(2)
    flight = SingleFlight(worker, slow, max_age=60)

    async def main():
        tasks = [asyncio.ensure_future(flight.get()) for _ in range(50)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(*tasks)
        again = await flight.get()  # fresh: no new computation
        return results, again

    try:
        results, again = asyncio.run(main())
    finally:
        worker.shutdown()
    assert results == [1] * 50 and again == 1 and calls == [1]


def test_background_tick_never_raises(caplog) -> None:
    """The server's periodic sampling logs a failure and keeps running (it must never raise)."""
    import asyncio
    import logging
    from types import SimpleNamespace

    from sci_ext.server.app import SciExt
    from sci_ext.server.sampler import SingleFlight, Worker

    def broken() -> None:
        raise OSError("disk gone")

    worker = Worker(1)
    try:
        app = SimpleNamespace(
            worker=worker,
            metrics=SimpleNamespace(compact=lambda: None),
            status=SingleFlight(worker, broken, max_age=1),
            health=SingleFlight(worker, lambda: None, max_age=1),
            log=logging.getLogger("sci_ext.test"),
        )
        asyncio.run(SciExt._tick(app))  # type: ignore[arg-type]
    finally:
        worker.shutdown()
    assert "background sampling failed: disk gone" in caplog.text


def test_status_cpu_reads_one_busy_core(jp_asyncio_loop, jp_fetch, sci_env) -> None:
    """Five polls of /sci/api/status a second apart while one core spins: ``100/N`` %, not 0/100 flips."""
    from cpu_oracle import Oracle, assert_one_busy_core, one_core_busy

    readings = []
    with one_core_busy():
        fetch(jp_asyncio_loop, jp_fetch, "sci", "api", "status")
        with Oracle() as oracle:  # each reading is of the window (1 s) before it: the oracle spans them
            for _ in range(5):
                time.sleep(1.0)
                code, body, _ = fetch(jp_asyncio_loop, jp_fetch, "sci", "api", "status")
                assert code == 200, body
                readings.append(json.loads(body)["resources"]["cpu_percent"])
    assert_one_busy_core(readings, oracle.percent, "/sci/api/status")
