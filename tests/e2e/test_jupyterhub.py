"""sci_ext under a real JupyterHub: two Unix users, their servers, private state, who may read what.

One hub for the module (``hub_harness``): ``LocalProcessSpawner`` runs each user's
server as that Unix user from a venv holding this checkout's wheel; the tests drive
kernels over the proxy's websocket, read ``/sci/*`` with every kind of credential, and
look at the users' homes as the other user would. Skipped, with the reason, without
root, Node's configurable-http-proxy or ``useradd`` (CI has all three).

The answers pinned here are documented in docs/jupyterhub.md (who may read what).
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from hub_harness import ALICE, BOB, CAROL, Hub, Kernel, sci_dirs, skip_reason, start_hub

pytestmark = [pytest.mark.slow, pytest.mark.hub]

_REASON = skip_reason()
if _REASON is not None:
    pytestmark.append(pytest.mark.skip(reason=_REASON))

ENDPOINTS = ("/sci/health", "/sci/metrics", "/sci/api/status")
CACHED_CELL = "%%cached hub_probe\nimport os, time\nprint('computed by', os.getuid())\ntime.sleep(0.3)\nanswer = 42"


@pytest.fixture(scope="module")
def hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    """The hub with both users' servers running (alice umask 022, bob umask 000, fresh homes)."""
    wheel = os.environ.get("SCI_EXT_TEST_WHEEL")

    def wheel_path() -> Path:
        return Path(wheel) if wheel else Path(request.getfixturevalue("built_wheel"))

    for hub in start_hub(wheel_path):
        began = time.monotonic()
        hub.settings(ALICE, **alice_settings())
        hub.settings(BOB, **bob_settings())
        hub.start_servers(ALICE, BOB)
        print(f"[hub] both servers up in {time.monotonic() - began:.1f} s", file=sys.stderr)
        yield hub


@pytest.fixture(scope="module")
def kernels(hub: Hub) -> Iterator[dict[str, Kernel]]:
    """One kernel per user with sci_ext loaded; alice runs the cached cell twice, bob once."""
    with ThreadPoolExecutor(2) as pool:  # together: each start waits for its kernel
        started = dict(zip((ALICE, BOB), pool.map(hub.kernel, (ALICE, BOB)), strict=True))
        loaded = list(pool.map(lambda kernel: kernel.run("%load_ext sci_ext"), started.values()))
    try:
        assert all(out["error"] is None for out in loaded), loaded
        yield started
    finally:
        for kernel in started.values():
            kernel.close()


def alice_settings() -> dict[str, object]:
    # Servers report their own activity every second (the default is 300 s).
    return {"umask": 0o022, "env": {"JUPYTERHUB_ACTIVITY_INTERVAL": "1"}}


def bob_settings() -> dict[str, object]:
    """umask 000. Jupyter itself makes its runtime dir's parents (~/.local, ~/.local/share)
    world-writable under that umask, and sci_ext then (rightly) refuses state below them; its
    files go elsewhere here so that what is checked is what sci_ext creates (docs/jupyterhub.md)."""
    jupyter = {"JUPYTER_RUNTIME_DIR": f"/home/{BOB}/.jupyter/runtime", "JUPYTER_DATA_DIR": f"/home/{BOB}/.jupyter/data"}
    return {
        "umask": 0o000,
        "env": {"JUPYTERHUB_ACTIVITY_INTERVAL": "1", **jupyter},
        "args": ["--SciExt.health_allow_unauthenticated=True"],
    }


def home(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def api_key(hub: Hub, user: str) -> str:
    """A ``metrics:read`` API key made by ``user`` with the command line, as their own Unix user."""
    res = hub.run_as(user, [hub.python, "-m", "sci_ext", "apikey", "create", "prometheus", "--scope", "metrics:read"])
    assert res.returncode == 0, res.stderr
    (token,) = re.findall(r"sci_[A-Za-z0-9]+_[A-Za-z0-9_\-]+", res.stdout)
    return token


@pytest.fixture(scope="module")
def scrape_keys(hub: Hub) -> dict[str, str]:
    """Each user's ``metrics:read`` key for their Prometheus scrapes (made together, one process each)."""
    with ThreadPoolExecutor(2) as pool:
        return dict(zip((ALICE, BOB), pool.map(lambda user: api_key(hub, user), (ALICE, BOB)), strict=True))


def test_both_servers_load_both_extensions_with_no_enable_step(hub: Hub) -> None:
    def check(user: str) -> None:
        token = hub.token(user)
        health = hub.user_request(user, "GET", "/sci/health", token=token)
        assert health.status_code == 200, health.text
        assert health.json()["status"] in ("ok", "degraded")
        extensions = hub.user_request(user, "GET", "/lab/api/extensions", token=token)
        assert extensions.status_code == 200
        assert "sci-ext" in {ext["name"] for ext in extensions.json()}

    with ThreadPoolExecutor(2) as pool:  # together: each server's first answers take a while
        list(pool.map(check, (ALICE, BOB)))
    log = hub.log_tail(500_000)
    assert log.count("/sci endpoints ready") >= 2, log[-2000:]


def test_kernels_run_as_their_user_with_their_own_paths(hub: Hub, kernels: dict[str, Kernel]) -> None:
    cell = (
        "import os\nfrom sci_ext.core.config import get_config\nc = get_config()\n"
        "print(os.getuid(), c.core.state_dir, c.cache.dir, c.security.vault_path, sep='\\n')"
    )
    for user, kernel in kernels.items():
        uid, *paths = kernel.run(cell)["text"].split()
        assert int(uid) == pwd.getpwnam(user).pw_uid
        assert all(Path(p).expanduser().is_relative_to(home(user)) for p in paths), paths


def test_cache_is_per_user_and_runs_as_the_user(hub: Hub, kernels: dict[str, Kernel]) -> None:
    alice, bob = kernels[ALICE], kernels[BOB]
    first = alice.run(CACHED_CELL)
    assert first["error"] is None, first
    assert f"computed by {pwd.getpwnam(ALICE).pw_uid}" in first["text"]
    second = alice.run(CACHED_CELL)
    assert "computed by" in second["text"]  # replayed output
    assert "restored" in second["text"] or "hit" in second["text"], second
    assert alice.run("print(answer)")["text"].strip() == "42"
    other = bob.run(CACHED_CELL)
    assert other["error"] is None, other
    assert f"computed by {pwd.getpwnam(BOB).pw_uid}" in other["text"]
    assert "restored" not in other["text"], "bob's kernel was served alice's entry"


def test_sci_ext_state_is_private_whatever_the_umask(hub: Hub, kernels: dict[str, Kernel]) -> None:
    # Make sure every kind of state exists: a cached cell ran; health, metrics and status were read.
    for user in (ALICE, BOB):
        for path in ENDPOINTS:
            hub.user_request(user, "GET", path, token=hub.token(user))
    problems = []
    for user in (ALICE, BOB):
        uid = pwd.getpwnam(user).pw_uid
        dirs = list(sci_dirs(home(user)))
        assert len(dirs) >= 4, f"{user}: sci_ext made too few directories to check: {dirs}"
        for path in dirs:
            st = path.lstat()
            if st.st_uid != uid or st.st_mode & 0o077:
                problems.append(f"{path} {oct(st.st_mode & 0o777)} uid {st.st_uid}")
        # Parents that hold nothing but sci_ext were made by sci_ext: 0700 too.
        for base in (".local/state", ".cache", ".config"):
            parent = home(user) / base
            if parent.is_dir() and {p.name for p in parent.iterdir()} == {"sci_ext"}:
                if parent.stat().st_mode & 0o077:
                    problems.append(f"{parent} {oct(parent.stat().st_mode & 0o777)} (holds only sci_ext)")
    assert not problems, "\n".join(problems)


def test_the_other_user_can_list_or_read_nothing(hub: Hub, kernels: dict[str, Kernel]) -> None:
    probe = (
        "import os, sys\nlisted = read = 0\n"
        "for root in sys.argv[1:]:\n"
        "    for base, dirs, files in os.walk(root):\n"
        "        listed += len(dirs) + len(files)\n"
        "        for name in files:\n"
        "            try:\n"
        "                with open(os.path.join(base, name), 'rb') as fh: read += len(fh.read())\n"
        "            except OSError: pass\n"
        "print(listed, read)\n"
    )
    for owner, other in ((ALICE, BOB), (BOB, ALICE)):
        roots = [str(p) for p in sci_dirs(home(owner))]
        res = hub.run_as(other, [hub.python, "-c", probe, *roots])
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["0", "0"], f"{other} listed/read {res.stdout} of {owner}'s sci_ext state"
    # The same from bob's kernel.
    cell = "import os\nseen = []\n" + "".join(
        f"try:\n    seen += os.listdir({str(p)!r})\nexcept PermissionError:\n    pass\n" for p in sci_dirs(home(ALICE))
    )
    cell += "print(len(seen))"
    assert kernels[BOB].run(cell)["text"].strip() == "0"


def test_who_may_read_what(hub: Hub, scrape_keys: dict[str, str], team_prometheus: Any) -> None:
    key = scrape_keys[ALICE]
    expected = {
        # principal: (health, metrics, status) for alice's server
        "owner token": (200, 200, 200),
        "other user's token": (401, 401, 401),
        "anonymous": (401, 401, 401),
        "owner's metrics:read key": (401, 200, 401),
        "bad key": (401, 401, 401),
    }
    headers = {
        "owner token": {"Authorization": f"token {hub.token(ALICE)}"},
        "other user's token": {"Authorization": f"token {hub.token(BOB)}"},
        "anonymous": {},
        "owner's metrics:read key": {"Authorization": f"Bearer {key}"},
        "bad key": {"Authorization": f"Bearer {key[:-4]}AAAA"},
    }
    seen = {
        who: tuple(hub.user_request(ALICE, "GET", path, headers=h).status_code for path in ENDPOINTS)
        for who, h in headers.items()
    }
    assert seen == expected
    # health_allow_unauthenticated set for bob's server only.
    assert hub.user_request(BOB, "GET", "/sci/health").status_code == 200
    assert hub.user_request(BOB, "GET", "/sci/metrics").status_code == 401
    assert hub.user_request(ALICE, "GET", "/sci/health").status_code == 401


def test_lockouts_do_not_cross_users(hub: Hub, scrape_keys: dict[str, str], team_prometheus: Any) -> None:
    key = scrape_keys[ALICE]
    bob = {"Authorization": f"token {hub.token(BOB)}"}
    bogus = {"Authorization": "Bearer sci_deadbeef_" + "x" * 43}
    kinds = [{}] * 500 + [bob] * 400 + [bogus] * 100  # 1,000 bad requests, bounded
    local = threading.local()

    def send(headers: dict[str, str]) -> int:
        # One keep-alive connection per thread, plain http.client: the server's and the proxy's
        # work is what is measured (requests' own cost, ~1.5 ms of CPU a request here, is not).
        for attempt in (1, 2):
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection("127.0.0.1", hub.public_port, timeout=60)
            try:
                local.conn.request("GET", f"/user/{ALICE}/sci/metrics", headers=headers)
                response = local.conn.getresponse()
                response.read()
                return response.status
            except (http.client.HTTPException, OSError):
                local.conn.close()
                del local.conn  # the proxy closed an idle connection: reconnect once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    audit = home(ALICE) / ".local" / "state" / "sci_ext" / "audit" / "audit.jsonl"
    before = len(audit.read_text().splitlines()) if audit.exists() else 0
    with ThreadPoolExecutor(8) as pool:
        codes = Counter(pool.map(send, kinds))
    assert set(codes) <= {401, 403}, codes
    assert codes[200] == 0
    # Alice's audit log: each failure with a credential until its pair is locked out (two pairs:
    # 11 records and a lockout each), a budget alert at most, and the anonymous ones bounded
    # (the first per client and minute, and a sum if the minute ends meanwhile; the sums are
    # checked in tests/unit/test_security_anonymous_audit.py). It was 524 records or more.
    added = [json.loads(line) for line in audit.read_text().splitlines()[before:]]
    anonymous = [r for r in added if r["details"].get("reason") == "missing"]
    assert len(anonymous) <= 2 and len(added) <= 30, Counter(r["event"] for r in added)
    assert {r["event"] for r in added} >= {"auth.lockout"}
    good = hub.user_request(ALICE, "GET", "/sci/metrics", headers={"Authorization": f"Bearer {key}"})
    assert good.status_code == 200, good.text
    assert hub.user_request(ALICE, "GET", "/sci/metrics", token=hub.token(ALICE)).status_code == 200
    print(f"\n1,000 bad requests to {ALICE}'s /sci/metrics: {dict(codes)}; owner's key and token still 200")


def _cell_count(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("sci_cell_duration_seconds_count")
    )


def test_each_users_metrics_count_only_their_kernels(hub: Hub, kernels: dict[str, Kernel]) -> None:
    before = {u: _cell_count(hub.user_request(u, "GET", "/sci/metrics", token=hub.token(u)).text) for u in (ALICE, BOB)}
    for _ in range(3):
        assert kernels[ALICE].run("x = 1")["error"] is None
    after = {u: _cell_count(hub.user_request(u, "GET", "/sci/metrics", token=hub.token(u)).text) for u in (ALICE, BOB)}
    assert after[ALICE] - before[ALICE] == 3
    assert after[BOB] == before[BOB]
    # The hub's own metrics beside them. (Its running-servers gauge is checked after the hub
    # restart: JupyterHub counts spawns that overlap twice until then, see docs/jupyterhub.md.)
    assert _hub_running_servers(hub) is not None


def _hub_running_servers(hub: Hub) -> float | None:
    """``jupyterhub_running_servers`` from the hub's ``/hub/metrics`` (None when absent)."""
    res = requests.get(f"{hub.url}/hub/metrics", headers={"Authorization": f"token {hub.admin_token}"}, timeout=30)
    assert res.status_code == 200, res.text[:500]
    found = re.search(r"^jupyterhub_running_servers(?:\{[^}]*\})? (\S+)$", res.text, re.M)
    return float(found.group(1)) if found else None


@pytest.fixture(scope="module")
def team_prometheus(
    hub: Hub, scrape_keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.CompletedProcess[str], str, Any]]:
    """``jupyter sci hub scrape-config``'s result and config, and a real Prometheus started on it.

    Started, not waited for: Prometheus 2.42 scrapes first about 5 s after it starts (its
    scrape manager applies targets on a 5 s tick), so earlier tests request this fixture and
    that time passes while they run. Its scrapes are valid requests with each user's key
    during the 1,000 bad ones, and ``/sci`` requests during the activity test; the
    Prometheus test checks what it scraped.
    """
    from prometheus_server import PrometheusServer

    tmp = tmp_path_factory.mktemp("team_prometheus")
    keys = tmp / "keys"
    keys.mkdir(mode=0o700)
    for user in (ALICE, BOB):
        (keys / user).write_text(scrape_keys[user])
    (keys / "hub").write_text(hub.admin_token)
    (tmp / "hub_token").write_text(hub.admin_token)
    out = tmp / "scrape.yml"
    res = subprocess.run(
        [sys.executable, "-m", "sci_ext", "hub", "scrape-config", "--hub-url", hub.url, "--keys-dir", str(keys),
         "--token-file", str(tmp / "hub_token"), "--hub-metrics-token-file", str(keys / "hub"),
         "--interval", "1s", "-o", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if res.returncode != 0 or not out.exists():
        yield res, "", None
        return
    prometheus = PrometheusServer(tmp, [])
    prometheus.config.write_text(out.read_text())
    prometheus.start()
    try:
        yield res, out.read_text(), prometheus
    finally:
        prometheus.stop()


@dataclass
class Carol:
    """Carol's first server, being started; alice's directories from before."""

    spawn: Future[requests.Response]
    alice_dirs: set[str]

    def wait(self, hub: Hub) -> None:
        """Wait until carol's server runs (the spawn answers 201, or 202 when it was slow)."""
        assert self.spawn.result().status_code in (201, 202), self.spawn.result().text
        hub.wait_running(CAROL)


@pytest.fixture(scope="module")
def carol(hub: Hub) -> Iterator[Carol]:
    """Carol's first server, started and not waited for (the activity test's waits pass meanwhile).

    Her home is world-writable and her ``XDG_STATE_HOME`` points into alice's home: two bad
    inputs, each refused with its own reason (the last two tests). She is added to the hub here.
    """
    res = hub.api("POST", f"/users/{CAROL}")
    assert res.status_code in (201, 409), res.text  # 409: already a hub user
    alice_dirs = {str(p) for p in home(ALICE).rglob("*") if p.is_dir()}
    env = {"JUPYTERHUB_ACTIVITY_INTERVAL": "1", "XDG_STATE_HOME": str(home(ALICE) / ".local" / "state")}
    hub.settings(CAROL, umask=0o022, env=env)
    home(CAROL).chmod(0o777)
    pool = ThreadPoolExecutor(1)
    try:
        yield Carol(pool.submit(hub.api, "POST", f"/users/{CAROL}/server"), alice_dirs)
    finally:
        pool.shutdown()
        home(CAROL).chmod(0o755)


@pytest.fixture(scope="module")
def spare_hub(hub: Hub) -> Hub:
    """The hub with its next process imported and waiting (for the restart test).

    Requested by the activity test too: the imports (seconds of CPU) overlap its waits.
    """
    hub.prepare_spare()
    return hub


def test_sci_requests_are_not_user_activity(hub: Hub, team_prometheus: Any, spare_hub: Hub, carol: Carol) -> None:
    """Scrapes are no activity. (Prometheus, the spare hub and carol's server start meanwhile: see their fixtures.)"""

    def last_activity() -> tuple[str, str]:
        model = hub.api("GET", f"/users/{ALICE}").json()
        server = hub.user_request(ALICE, "GET", "/api/status", token=hub.token(ALICE)).json()
        return model["servers"][""]["last_activity"], server["last_activity"]

    # The server reports its activity every 1 s: wait until the hub has caught up with earlier
    # requests (it holds what the server last reported, the same ISO timestamp).
    before = last_activity()
    deadline = time.monotonic() + 15
    while before[0] != before[1] and time.monotonic() < deadline:
        time.sleep(0.1)
        before = last_activity()
    assert before[0] == before[1], before
    for _ in range(3):
        for path in ENDPOINTS:
            hub.user_request(ALICE, "GET", path, token=hub.token(ALICE))
    assert last_activity()[1] == before[1]  # the server's own view: at once
    # A report interval and a half (1 s, +-10 % jitter): had the server counted them, the hub would know.
    time.sleep(1.5)
    assert last_activity() == before
    # Positive control: real use is activity, seen by the server at once and by the hub within a few reports.
    hub.user_request(ALICE, "GET", "/api/contents", token=hub.token(ALICE))
    deadline = time.monotonic() + 15
    after = last_activity()
    while not (after[0] > before[0] and after[1] > before[1]) and time.monotonic() < deadline:
        time.sleep(0.2)
        after = last_activity()
    assert after[0] > before[0] and after[1] > before[1], (before, after)


def _prometheus_until(prometheus: Any, promql: str, predicate: Any, timeout: float = 60) -> list[dict[str, Any]]:
    """Poll an instant query every 0.1 s until ``predicate(result)`` (Prometheus may still be starting)."""
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        with suppress(OSError, ValueError):  # not listening yet; 503 (not JSON) while it starts
            result = prometheus.query(promql)["result"]
            if predicate(result):
                return result
        time.sleep(0.1)
    raise AssertionError(f"{promql}: last result {result}")


def test_one_prometheus_scrapes_every_user_and_the_hub(
    hub: Hub, kernels: dict[str, Kernel], team_prometheus: tuple[subprocess.CompletedProcess[str], str, Any]
) -> None:
    res, text, prometheus = team_prometheus
    assert res.returncode == 0, res.stderr
    config = yaml.safe_load(text)
    assert {job["job_name"] for job in config["scrape_configs"]} == {
        "sci_ext_sci_alice",
        "sci_ext_sci_bob",
        "jupyterhub",
    }
    assert hub.admin_token not in text  # keys stay in their files
    try:
        _prometheus_until(prometheus, "up", lambda r: sum(float(x["value"][1]) for x in r) >= 3)  # 3 targets up
        rows = _prometheus_until(
            prometheus,
            "sum by (user) (sci_cell_duration_seconds_count)",
            lambda r: {x["metric"].get("user") for x in r} >= {ALICE, BOB},
        )
        by_user = {row["metric"]["user"]: float(row["value"][1]) for row in rows}
        direct = {u: _cell_count(hub.user_request(u, "GET", "/sci/metrics", token=hub.token(u)).text) for u in by_user}
        # What the one Prometheus holds for each user is what that user's own server reports.
        assert by_user[ALICE] > 0 and by_user[BOB] > 0
        assert abs(by_user[ALICE] - direct[ALICE]) <= 1 and abs(by_user[BOB] - direct[BOB]) <= 1
        assert _prometheus_until(prometheus, "jupyterhub_running_servers", bool)
    finally:
        prometheus.stop()  # done scraping: the later tests restart servers


def test_scrape_config_for_a_user_without_a_key_says_so(hub: Hub, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(hub.admin_token)
    res = subprocess.run(
        [sys.executable, "-m", "sci_ext", "hub", "scrape-config", "--hub-url", hub.url, "--keys-dir", str(tmp_path),
         "--token-file", str(tmp_path / "token")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    users = sorted(user["name"] for user in hub.api("GET", "/users").json())  # carol too, once added
    assert f"no key file for {', '.join(users)}: not scraped" in res.stderr
    assert yaml.safe_load(res.stdout)["scrape_configs"] == []


def test_shared_redis_per_user_keys_never_cross_and_a_team_key_shares(
    hub: Hub, kernels: dict[str, Kernel], redis_server: Any
) -> None:
    """Both users' kernels on one redis-server; the signing key decides whether entries cross."""
    redis = redis_server
    alice, bob = kernels[ALICE], kernels[BOB]

    def use(kernel: Kernel, key: str) -> None:
        # The same settings a hub admin puts in c.Spawner.environment (docs/jupyterhub.md), set at run time.
        out = kernel.run(f"%sci_config cache.redis_url={redis.url} cache.redis_signing_key={key}")
        assert out["error"] is None, out

    def run(kernel: Kernel, round_name: str) -> str:
        cell = f"%%cached team_{round_name} --backend redis\nimport os\nprint('computed by', os.getuid())\nresult = 7"
        out = kernel.run(cell)
        assert out["error"] is None, out
        return str(out["text"])

    alice_uid, bob_uid = pwd.getpwnam(ALICE).pw_uid, pwd.getpwnam(BOB).pw_uid
    try:
        use(alice, "a" * 64)
        use(bob, "b" * 64)
        assert f"computed by {alice_uid}" in run(alice, "per_user")
        per_user = run(bob, "per_user")
        # Per-user keys: alice's entry fails bob's signature check, so his kernel computes.
        assert f"computed by {bob_uid}" in per_user, per_user
        use(bob, "a" * 64)
        assert f"computed by {alice_uid}" in run(alice, "team")
        team = run(bob, "team")
        # A team key: bob's kernel is served the entry alice's kernel stored.
        assert f"computed by {alice_uid}" in team and ("restored" in team or "hit" in team), team
    finally:
        for kernel in (alice, bob):
            kernel.run("%sci_config --reset cache.redis_url\n%sci_config --reset cache.redis_signing_key")


def test_hub_restart_while_kernels_run_loses_nothing(spare_hub: Hub, kernels: dict[str, Kernel], carol: Carol) -> None:
    """The hub restarts as in a deployment (its own proxy, ``cleanup_servers = False``): users notice nothing.

    The new hub process has done its imports beforehand (``spare_hub``); what it does once it
    runs (config, database, finding the three servers and their routes) is what is checked here.
    """
    hub = spare_hub
    carol.wait(hub)  # no spawn pending: the hub saves a server's state when its spawn ends
    alice = kernels[ALICE]
    assert alice.run("survivor = 'still here'")["error"] is None
    assert alice.run(CACHED_CELL)["error"] is None  # stored (a hit already when the cache test ran)
    before = _cell_count(hub.user_request(ALICE, "GET", "/sci/metrics", token=hub.token(ALICE)).text)
    hub.stop()
    assert "Leaving single-user servers running" in hub.log_tail(20_000)
    # The hub is down: the proxy still routes alice's open websocket to her kernel.
    assert alice.run("print(survivor)")["text"].strip() == "still here"
    hub.start()
    for user in (ALICE, BOB, CAROL):
        hub.wait_running(user)  # the new hub found the servers running (init_spawners polls them)
    log = hub.log_tail(20_000)
    assert all(f"{user} still running" in log for user in (ALICE, BOB, CAROL)), log[-3000:]
    assert _hub_running_servers(hub) == 3
    # The websocket opened before the restart still runs cells: nothing reconnects, nothing is lost.
    assert alice.run("print(survivor)")["text"].strip() == "still here"
    after = _cell_count(hub.user_request(ALICE, "GET", "/sci/metrics", token=hub.token(ALICE)).text)
    assert after >= before + 2, (before, after)
    hit = alice.run(CACHED_CELL)
    assert "restored" in hit["text"] or "hit" in hit["text"], hit
    # A new connection (a browser reload) works too.
    alice.connect()
    assert alice.run("print(survivor)")["text"].strip() == "still here"


@pytest.fixture(scope="module")
def second_start(hub: Hub, carol: Carol, kernels: dict[str, Kernel]) -> set[str]:
    """Alice's server stopped and started again as it was (her state stays); carol's running.

    Returns alice's directories from before carol's start. Alice's ``kernels`` are gone after this.
    """
    assert kernels[ALICE].run(CACHED_CELL)["error"] is None  # stored (a hit when the cache test ran)
    hub.stop_server(ALICE)
    hub.start_servers(ALICE)
    carol.wait(hub)
    return carol.alice_dirs


def test_cache_survives_a_server_restart(hub: Hub, second_start: set[str]) -> None:
    kernel = hub.kernel(ALICE)
    try:
        assert kernel.run("%load_ext sci_ext")["error"] is None
        again = kernel.run(CACHED_CELL)
        assert again["error"] is None, again
        assert "restored" in again["text"] or "hit" in again["text"], again
        assert kernel.run("print(answer)")["text"].strip() == "42"
    finally:
        kernel.close()


def test_a_world_writable_home_is_refused_and_the_server_still_starts(hub: Hub, second_start: set[str]) -> None:
    carol_home = home(CAROL)
    assert carol_home.stat().st_mode & 0o777 == 0o777
    health = hub.user_request(CAROL, "GET", "/sci/health", token=hub.token(CAROL))
    assert health.status_code in (200, 503)
    report = health.json()
    assert report["status"] in ("degraded", "failing"), report
    details = " ".join(str(check.get("detail", "")) for check in report["checks"])
    assert str(carol_home) in details and "writable" in details, report
    assert not list(sci_dirs(carol_home)), "sci_ext kept state in a world-writable home"


def test_a_state_dir_in_another_users_home_is_refused(hub: Hub, second_start: set[str]) -> None:
    target = home(ALICE) / ".local" / "state"
    health = hub.user_request(CAROL, "GET", "/sci/health", token=hub.token(CAROL))
    report = health.json()
    assert report["status"] in ("degraded", "failing"), report
    # Refused for what it is (alice's), not for carol's world-writable home: alice's is 0755.
    assert home(ALICE).stat().st_mode & 0o777 == 0o755
    assert str(target) in " ".join(str(check.get("detail", "")) for check in report["checks"]), report
    # Nothing of carol's in alice's home, and none of her directories gone. (Her own server and
    # kernels add and remove files meanwhile, e.g. per-process metrics files and jupyter_lsp's
    # npm logs, so files are not compared.)
    carol_uid = pwd.getpwnam(CAROL).pw_uid
    after = list(home(ALICE).rglob("*"))
    assert not [p for p in after if p.lstat().st_uid == carol_uid]
    assert second_start <= {str(p) for p in after if p.is_dir()}, sorted(second_start - {str(p) for p in after})
