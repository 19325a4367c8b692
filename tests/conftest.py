"""Shared fixtures: an isolated sci_ext environment, real kernels, a real Redis."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from guard_fixtures import *  # noqa: F403
from kernel_harness import REPO, KernelSession, kernel_env
from security_fixtures import *  # noqa: F403
from telemetry_fixtures import *  # noqa: F403

ISOLATED_VARS = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")


@pytest.fixture(autouse=True)
def sci_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Every test gets its own XDG directories, project directory and config manager."""
    from sci_ext.core.config import set_config_manager

    dirs = {var: tmp_path / "xdg" / var.lower() for var in ISOLATED_VARS}
    for var, path in dirs.items():
        path.mkdir(parents=True)
        monkeypatch.setenv(var, str(path))
    for var in list(os.environ):
        if var.startswith("SCI_EXT_"):
            monkeypatch.delenv(var)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    set_config_manager(None)
    yield {"project": project, **{k: Path(v) for k, v in dirs.items()}}
    set_config_manager(None)


def pytest_configure(config: pytest.Config) -> None:
    """Where the Jupyter servers of this run share JupyterLab's yarn configuration
    (tests/sci_test_server_main.py).  Set once, before xdist starts its workers: they inherit it."""
    if "SCI_TEST_YARN_CONFIG" not in os.environ:
        folder = Path(tempfile.mkdtemp(prefix="sci_ext-test-yarn-"))
        os.environ["SCI_TEST_YARN_CONFIG"] = str(folder / "yarn-config.json")
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what collection made (imported modules, parametrize values) out of the cyclic
    garbage collector: a full collection in a worker then scans only what tests create.

    Without it, every full collection scans the 0.5 M objects the imports left, and each nested
    ``pytest.main`` (the nbval plugin's tests) ends with one: 24 s of garbage collection in a
    full run (measured with ``gc.callbacks``).  Nothing frozen is garbage: it lives as long as
    the worker.
    """
    gc.freeze()


# Under pytest-xdist (`scripts/dev.sh`: -n 4 --dist loadscope) a module runs whole on one worker,
# so its module-scoped servers and browsers start once.  xdist hands out modules with the most
# tests first; with a few modules that take minutes (the hub, the browser tests, the deploy
# server), one of them handed out last decides the wall time.  Heaviest first instead (the
# longest-processing-time rule): the modules below by their measured wall time (seconds, from
# the --durations of the full run of 2026-12-07 22:52 UTC on 2 loaded cores, and the modules
# changed since then measured alone; only the order matters, a stale figure costs balance,
# never a test), every other module by its tests times a figure per tier.
_MODULE_SECONDS = {
    "tests/e2e/test_jupyterhub.py": 340,
    "tests/e2e/browser/test_labextension.py": 100,
    "tests/server/test_server_integration.py": 100,
    "tests/e2e/browser/test_dashboard_browser.py": 95,
    "tests/server/test_deploy_server.py": 90,
    "tests/e2e/test_notebooks_anywhere.py": 70,
    "tests/e2e/browser/test_goals.py": 65,
    "tests/e2e/test_nbval_plugin.py": 60,
    "tests/server/test_scale_out.py": 50,
    "tests/e2e/security/test_cross_user_attacks.py": 50,
    "tests/unit/test_security_cli.py": 33,
    "tests/kernel/test_deploy.py": 32,
    "tests/kernel/test_breaker_shared_timeout.py": 32,
    "tests/kernel/test_llm_kernel.py": 30,
    "tests/e2e/bench/test_bench_cached.py": 20,
    "tests/server/test_grafana_dashboard.py": 25,
    "tests/unit/test_security_vault_tamper.py": 25,
    "tests/kernel/test_cached_chain_kernel.py": 22,
    "tests/e2e/bench/test_bench_resilience.py": 12,
    "tests/server/test_quickstart_url.py": 18,
    "tests/e2e/security/test_trust_boundary.py": 5,
    # unit modules whose few tests take long (LLM SDK clients, retry bounds, a busy core): weighed
    # by their test count alone they came last and ran alone at the end (full run of 2026-12-08)
    "tests/unit/test_llm_providers.py": 15,
    "tests/unit/test_llm_bounds.py": 14,
    "tests/unit/test_cpu_sampler.py": 8,
    "tests/unit/test_security_vault.py": 6,
    "tests/unit/test_cli_config.py": 6,
}
_SECONDS_PER_TEST = {"tests/e2e/": 5.0, "tests/server/": 4.0, "tests/kernel/": 0.6, "notebooks/": 1.0}
#: Modules whose tests share nothing expensive, with seconds per test: each test is its own
#: unit of work, so their long tests spread over the workers (the differential notebooks take
#: 5-75 s each; the ones over 5 s by name).
_SPLIT_MODULES = {"tests/e2e/test_differential.py": 5.0}
_TEST_SECONDS = {
    "tests/e2e/test_differential.py::test_cached_notebook_equals_plain_run[pdsh_hyperparameters]": 75.0,
    "tests/e2e/test_differential.py::test_cached_notebook_equals_plain_run[pdsh_merge_join]": 17.0,
    "tests/e2e/test_differential.py::test_cached_notebook_equals_plain_run[pandas_10min]": 16.0,
    "tests/e2e/test_differential.py::test_cached_notebook_equals_plain_run[numpy_save_load_arrays]": 10.0,
}


#: Modules that mostly wait (on a browser, a hub, servers starting, Prometheus scrapes, breaker
#: timeouts): their CPU was under 40 % of their wall time in a profile of the full run
#: (2026-12-07 23:18 UTC, CPU of each test's process tree).  Heaviest first alone starts the
#: hub, the browsers and the servers together, and two cores then idle while the
#: workers wait; so at most two workers run such modules at once, and the others take
#: the heaviest module that computes.  SCI_EXT_TEST_SCHEDULE=heaviest turns this off (to compare).
_WAITING = {
    "tests/e2e/test_jupyterhub.py",
    "tests/e2e/browser/test_labextension.py",
    "tests/e2e/browser/test_dashboard_browser.py",
    "tests/e2e/browser/test_goals.py",
    "tests/server/test_server_integration.py",
    "tests/server/test_deploy_server.py",
    "tests/server/test_scale_out.py",
    "tests/server/test_grafana_dashboard.py",
    "tests/server/test_quickstart_url.py",
    "tests/e2e/test_notebooks_anywhere.py",
    "tests/kernel/test_breaker_shared_timeout.py",
    "tests/kernel/test_security_channels.py",
    "tests/e2e/bench/test_bench_import.py",
    "tests/e2e/bench/test_bench_server.py",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope`` handing out the heaviest modules first, waiting ones spread (see above)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    spread = os.environ.get("SCI_EXT_TEST_SCHEDULE") != "heaviest"

    class HeaviestFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if module in _SPLIT_MODULES else super()._split_scope(nodeid)

        def _weight(self, scope: str) -> float:
            module = scope.split("::", 1)[0]
            if module in _SPLIT_MODULES:
                return _TEST_SECONDS.get(scope, _SPLIT_MODULES[module])
            if module in _MODULE_SECONDS:
                return float(_MODULE_SECONDS[module])
            per_test = next((v for k, v in _SECONDS_PER_TEST.items() if module.startswith(k)), 0.1)
            return per_test * len(self.workqueue[scope])

        def _waiting_elsewhere(self, node: Any) -> int:
            """How many other workers have a waiting module not finished."""
            return sum(
                any(scope.split("::", 1)[0] in _WAITING and not all(done.values()) for scope, done in work.items())
                for other, work in self.assigned_work.items()
                if other is not node
            )

        def _assign_work_unit(self, node: Any) -> None:
            order = sorted(self.workqueue, key=self._weight, reverse=True)
            choice = order[0]
            if (
                spread
                and choice.split("::", 1)[0] in _WAITING
                and self._waiting_elsewhere(node) >= min(2, len(self.nodes) - 1)
            ):
                choice = next((scope for scope in order if scope.split("::", 1)[0] not in _WAITING), choice)
            self.workqueue.move_to_end(choice, last=False)
            super()._assign_work_unit(node)

    return HeaviestFirst(config, log)


# Environment variables a kernel reads when it starts (not later): a test that sets one
# gets a kernel started for it; for every other variable a warm spare kernel is adopted.
_STARTUP_VARS = ("PYTHON", "IPYTHON", "JUPYTER", "COVERAGE", "LD_", "HOME", "MPLBACKEND")


def _coverage_measuring() -> bool:
    """Whether coverage measures this test process (and so the kernels it starts)."""
    coverage = sys.modules.get("coverage")
    return coverage is not None and coverage.Coverage.current() is not None


class KernelPool:
    """One warm spare kernel per test process, started in the background while a test runs.

    A kernel costs about 2.5 s of wall time to start and stop but only 0.7 s of CPU; the
    rest is waiting.  Every test still gets a kernel nobody has used: the spare has not
    imported sci_ext yet, takes the test's environment and working directory
    (:meth:`KernelSession.adopt`), then runs ``%load_ext sci_ext`` as its first cell.
    Used kernels are stopped in the background (killed, or shut down cleanly when coverage
    measures them, so their data is written).
    """

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._starter = ThreadPoolExecutor(1, thread_name_prefix="kernel-spare")
        self._closer = ThreadPoolExecutor(2, thread_name_prefix="kernel-close")
        self._spare: Any = None
        self._closing: list[Any] = []

    def _submit(self, env: dict[str, str], cwd: Path) -> None:
        self._spare = (env, self._starter.submit(KernelSession, env, cwd, False))

    def take(self, env: dict[str, str], cwd: Path, load_extension: bool) -> KernelSession:
        """A never-used kernel with ``env`` and ``cwd``; a new spare starts behind it."""
        if self._spare is None:
            self._submit(env, cwd)
        spawned_with, future = self._spare
        self._submit(env, cwd)
        session: KernelSession = future.result()
        session.adopt(env, spawned_with, cwd, load_extension=load_extension)
        return session

    def close_later(self, session: KernelSession) -> None:
        """Shut ``session`` down without making the test wait for it.

        Killed at once unless coverage is measuring (a kernel writes its coverage data on a
        clean shutdown): the test is over, and IPython's own clean shutdown costs 0.13 s of
        CPU a kernel (measured; the same without sci_ext), about 100 kernels a full run.
        """
        self._closing.append(self._closer.submit(session.close, graceful=_coverage_measuring()))

    def shutdown(self) -> None:
        """Stop the spare and wait for every kernel to be gone."""
        if self._spare is not None:
            try:
                self._spare[1].result().close(graceful=_coverage_measuring())
            except Exception:  # noqa: BLE001 - a spare that failed to start has nothing to stop
                pass
        for future in self._closing:
            future.exception()
        self._starter.shutdown()
        self._closer.shutdown()


@pytest.fixture(scope="session")
def kernel_pool() -> Iterator[KernelPool]:
    """The warm spare kernels of this test process (see :class:`KernelPool`)."""
    pool = KernelPool()
    yield pool
    pool.shutdown()


@pytest.fixture
def kernel_factory(sci_env: dict[str, Path], kernel_pool: KernelPool) -> Iterator[Callable[..., KernelSession]]:
    """Start real kernels (``factory(env=..., cwd=...)``); all are stopped afterwards.

    Each is a kernel no other test used, with this test's environment; a warm spare is
    taken when ``env`` sets no variable a kernel reads only at start-up.
    """
    started: list[KernelSession] = []

    def start(env: dict[str, str] | None = None, cwd: Path | None = None, load_extension: bool = True) -> KernelSession:
        full = kernel_env({**os.environ, **(env or {})})
        where = cwd or sci_env["project"]
        if any(name.startswith(_STARTUP_VARS) for name in env or {}):
            session = KernelSession(full, where, load_extension=load_extension)
        else:
            session = kernel_pool.take(full, where, load_extension)
        started.append(session)
        return session

    yield start
    for session in started:
        kernel_pool.close_later(session)


@pytest.fixture(scope="module")
def _module_kernel(kernel_pool: KernelPool) -> Iterator[list[KernelSession]]:
    """The kernel the ``module_kernel`` tests of one module share (a list: replaced if it died)."""
    holder: list[KernelSession] = []
    yield holder
    for session in holder:
        kernel_pool.close_later(session)


@pytest.fixture
def kernel(
    request: pytest.FixtureRequest,
    kernel_factory: Callable[..., KernelSession],
    sci_env: dict[str, Path],
    kernel_pool: KernelPool,
    _module_kernel: list[KernelSession],
) -> KernelSession:
    """A real IPython kernel with ``%load_ext sci_ext`` already run.

    A kernel nobody used, except in modules marked ``module_kernel``: there the tests share one
    kernel, reset before each test (:meth:`KernelSession.reset`: the extension unloaded and
    imported again, namespace, history, environment and working directory as a new kernel
    has them), which saves a kernel start (about 0.5 s of CPU) per test.  A test that restarts
    it keeps it (the restart is a new process); one that kills it gets a new one next.
    """
    if request.node.get_closest_marker("module_kernel") is None:
        return kernel_factory()
    env = kernel_env(dict(os.environ))
    if _module_kernel and _module_kernel[-1].km.is_alive():
        session = _module_kernel[-1]
        session.reset(env, sci_env["project"])
    else:
        session = kernel_pool.take(env, sci_env["project"], load_extension=True)
        _module_kernel.append(session)
    return session


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real ``redis-server`` on a free loopback port, persistence off."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server); .ci/run installs it")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        """Stop the server (tests use this to simulate Redis going down)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def flushall(self) -> None:
        """Empty every database (``FLUSHALL``), so the next test starts from nothing."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"+OK"):
            pytest.fail(f"redis-server FLUSHALL answered {reply!r}")


@pytest.fixture(scope="session")
def _session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """The redis-server this test process shares between tests (a list: replaced when stopped)."""
    holder: list[RedisServer] = []
    yield holder
    for server in holder:
        server.stop()


@pytest.fixture
def redis_server(_session_redis: list[RedisServer], tmp_path_factory: pytest.TempPathFactory) -> RedisServer:
    """A real Redis server, empty (``FLUSHALL``) at the start of the test.

    One server per test process; a test that stops it (Redis going down) gets it to
    itself, and the next test starts a new one.
    """
    if _session_redis and _session_redis[-1].running:
        server = _session_redis[-1]
        server.flushall()
        return server
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    _session_redis.append(server)
    return server


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The wheel of this checkout, built once per test run (``pip wheel --no-deps --no-build-isolation``).

    The packaging tests of the server extension and of the labextension both read it.
    Under xdist the workers share one build (a file lock in the run's common temp dir).
    """
    import sys

    from filelock import FileLock

    common = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    out = common / "wheel"
    with FileLock(str(common / "wheel.lock")):
        found = sorted(out.glob("sci_ext-*.whl"))
        if found:
            return found[0]
        out.mkdir(exist_ok=True)
        build = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-w",
                str(out),
                str(REPO),
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert build.returncode == 0, build.stderr
        (wheel,) = out.glob("sci_ext-*.whl")
        return wheel
