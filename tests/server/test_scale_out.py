"""Scale-out as a user who outgrows one machine runs it: two Jupyter servers, one Redis.

Servers A and B have separate state, cache, data and config directories (as two machines
would) and share only one ``redis-server`` (``cache.redis_url``, ``breaker.redis_url``,
``cache.redis_signing_key``).  A cell cached through A hits through B, a breaker opened
through A is open through B, a rate limit spent through A is spent for B, and one real
Prometheus scrapes both with API keys and sums across them.  docs/scale-out.md explains it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live_server import LiveServer
from prometheus_server import PrometheusServer

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def machine_env(root: Path, redis_url: str) -> dict[str, str]:
    """The environment of one 'machine': its own XDG directories, the shared Redis."""
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        path = root / var.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    env.update(
        SCI_EXT_CACHE__REDIS_URL=redis_url,
        SCI_EXT_BREAKER__REDIS_URL=redis_url,
        SCI_EXT_CACHE__REDIS_SIGNING_KEY="scale-out-test-signing-key-0123456789",
        SCI_EXT_BREAKER__FAIL_MAX="1",
        SCI_EXT_BREAKER__RESET_TIMEOUT="600",
        PYTHONPATH=str(REPO),
    )
    return env


def api_key(env: dict[str, str]) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "sci_ext", "apikey", "create", "prometheus", "--scope", "metrics:read"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


CACHED = "%%cached shared_cell --backend redis\nimport time\ntime.sleep(1)\nanswer = 6 * 7\nprint(answer)"


def test_two_servers_share_cache_breakers_and_rate_limits_through_one_redis(tmp_path, redis_server):
    started = time.monotonic()
    env_a = machine_env(tmp_path / "machine-a", redis_server.url)
    env_b = machine_env(tmp_path / "machine-b", redis_server.url)
    server_a = LiveServer(tmp_path / "a", env=env_a).start()
    server_b = LiveServer(tmp_path / "b", env=env_b).start()
    prometheus = None
    try:
        ws_a = server_a.kernel(server_a.start_kernel())
        ws_b = server_b.kernel(server_b.start_kernel())
        for ws in (ws_a, ws_b):
            assert ws.execute("%load_ext sci_ext")["status"] == "ok"
        # The two kernels really are on separate state: different state dirs.
        dirs = [
            ws.execute("from sci_ext.core import get_config; print(get_config().core.state_dir)")["stdout"]
            for ws in (ws_a, ws_b)
        ]
        assert dirs[0] != dirs[1]

        # A cell cached through A is a hit through B (B never ran it).
        out = ws_a.execute(CACHED)
        assert out["status"] == "ok" and "42" in out["stdout"] and "restored" not in out["stdout"], out
        out = ws_b.execute(CACHED)
        assert out["status"] == "ok" and "42" in out["stdout"] and "restored from redis" in out["stdout"], out
        assert ws_b.execute("print(answer)")["stdout"].strip() == "42"

        # A breaker opened through A is open through B.
        out = ws_a.execute("%%guarded call --retries 0 --breaker shared_api\nraise TimeoutError('the API hangs')")
        assert out["status"] == "error"
        out = ws_b.execute("%%guarded call --retries 0 --breaker shared_api\nprint('B reached the API')")
        assert out["status"] == "error" and out["error"]["ename"] == "CircuitOpenError", out
        assert "B reached the API" not in out["stdout"]

        # A rate limit spent through A is spent for B.
        assert ws_a.execute("%%guarded shared_quota --rate 1/minute\nprint('A called')")["status"] == "ok"
        out = ws_b.execute(
            "from sci_ext.core import RateLimiter, RateLimitExceeded\n"
            "try:\n"
            "    RateLimiter('shared_quota', '1/minute').acquire(block=False)\n"
            "    print('B got a token')\n"
            "except RateLimitExceeded as exc:\n"
            "    print('B must wait:', type(exc).__name__)"
        )
        assert "B must wait: RateLimitExceeded" in out["stdout"], out

        # One Prometheus scrapes both servers with their own API keys and sums across them.
        (tmp_path / "prom").mkdir()
        prometheus = PrometheusServer(
            tmp_path / "prom",
            [(f"127.0.0.1:{server_a.port}", api_key(env_a)), (f"127.0.0.1:{server_b.port}", api_key(env_b))],
        ).start()
        prometheus.wait_up(2)
        per_server = prometheus.wait_for(
            "sum by (server) (sci_cell_duration_seconds_count)",
            lambda r: len(r) == 2 and all(float(s["value"][1]) >= 2 for s in r),
        )
        total = prometheus.wait_for("sum(sci_cell_duration_seconds_count)", lambda r: bool(r))
        assert float(total[0]["value"][1]) == pytest.approx(sum(float(s["value"][1]) for s in per_server))
        hits = prometheus.wait_for(
            'sum(sci_cache_requests_total{result="hit"})', lambda r: r and float(r[0]["value"][1]) >= 1
        )
        assert hits
        for ws in (ws_a, ws_b):
            ws.close()
    finally:
        if prometheus is not None:
            prometheus.stop()
        server_a.stop()
        server_b.stop()
    print(f"scale-out test: {time.monotonic() - started:.1f} s")
