"""A real JupyterHub for the multi-user tests: two Unix users, LocalProcessSpawner, the Node proxy.

The hub runs as root from this test environment; each user's single-user server runs as
that Unix user (``setuid`` by ``LocalProcessSpawner``) from a virtual environment that the
users can execute: made from the system ``/usr/bin/python3.X`` (an interpreter under
root's 0700 home is not executable by them) in a 0755 directory, with this
checkout's wheel installed into it (so the server extension and the lab extension are
enabled by installation alone, as for a user) and the test environment's other packages
reached through a ``.pth`` file (hard-linked beside the venv when other users cannot read
them where they are). A third Unix user (``CAROL``) is there for tests that need one more
fresh home; the hub learns of her only when such a test adds her.

The harness runs the hub as a deployment that restarts its hub does: the proxy runs on
its own (``ConfigurableHTTPProxy.should_start = False``, started here, not by the hub) and
``cleanup_servers = False`` from the hub's first start, so a hub restart leaves the proxy's
routes, the single-user servers, their kernels and open websockets alone.

The users' venv depends only on the wheel and the test environment, so it is built once per
machine and reused while they are unchanged: ``/var/cache/sci_ext-tests/hub-venv-KEY``
(KEY: a hash of the wheel's bytes, the interpreter and the test environment's distributions),
root-owned and writable by nobody else, which is checked before each use because both users'
servers execute it.

Per-user settings (extra environment, server arguments, umask) come from a JSON file that
the spawner reads at each spawn, so a test can change them between restarts. Facts and
timings this follows: ``shared/reference/jupyterhub-facts.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from filelock import FileLock, Timeout

ALICE = "sci_alice"
BOB = "sci_bob"
USERS = (ALICE, BOB)
#: A third Unix user, added to the hub only by the tests that need one more fresh home.
CAROL = "sci_carol"
UNIX_USERS = (*USERS, CAROL)
PASSWORD = "sci-hub-test-password"

CONFIG = r'''
import asyncio, json, os, time
from jupyterhub.spawner import LocalProcessSpawner

ROOT = {root!r}
SETTINGS = os.path.join(ROOT, "user_settings.json")


def _settings(name):
    try:
        with open(SETTINGS) as fh:
            return json.load(fh).get(name, {{}})
    except FileNotFoundError:
        return {{}}


def _zombie(pid):
    try:
        with open(f"/proc/{{pid}}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class SciSpawner(LocalProcessSpawner):
    """LocalProcessSpawner with per-user environment, arguments and umask from SETTINGS."""

    def get_env(self):
        env = super().get_env()
        env.update(_settings(self.user.name).get("env", {{}}))
        return env

    def get_args(self):
        return super().get_args() + list(_settings(self.user.name).get("args", []))

    async def start(self):
        # Return once the server accepts connections: the hub's own wait polls with an
        # exponential backoff (up to 5 s apart) and notices a server seconds late. A test speedup only.
        ip, port = await super().start()
        deadline = time.monotonic() + self.start_timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection(ip, port)
            except OSError:
                await asyncio.sleep(0.05)
            else:
                writer.close()
                break
        return ip, port

    async def poll(self):
        status = await super().poll()
        if status is None and self.proc is None and self.pid and _zombie(self.pid):
            # After a hub restart the server is no child of this hub: once it exits it stays a
            # zombie until init reaps it (seconds later here), and kill(pid, 0) still finds it.
            self.clear_state()
            return 0
        return status

    async def wait_for_death(self, timeout=10):
        # The same for stops: poll every 50 ms instead of backing off.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.poll() is not None:
                return True
            await asyncio.sleep(0.05)
        return False

    def make_preexec_fn(self, name):
        inner = super().make_preexec_fn(name)
        umask = _settings(name).get("umask")

        def preexec():
            if umask is not None:
                os.umask(umask)
            inner()

        return preexec


c = get_config()
c.JupyterHub.bind_url = "http://127.0.0.1:{public_port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
# The proxy runs on its own (started by the harness, as a deployment that restarts its hub
# runs it): a hub restart then keeps every route and open websocket.
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.JupyterHub.db_url = "sqlite:///" + os.path.join(ROOT, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(ROOT, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(ROOT, "jupyterhub.pid")
# Stopping the hub leaves the servers running. This is read when the hub starts: a hub that
# started with the default (True) stops every server on SIGTERM, whatever the file says then.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.last_activity_interval = {last_activity_interval!r}
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allowed_users = set({users!r})
c.JupyterHub.spawner_class = SciSpawner
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.ip = "127.0.0.1"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.services = [{{"name": "tester", "api_token": {admin_token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "tester-role",
    "services": ["tester"],
    "scopes": ["admin:users", "admin:servers", "tokens", "read:metrics", "access:servers", "list:users"],
}}]
'''


#: A module the hub and the users' venv import at start (the venv by a ``.pth`` file): it stands
#: in for ``rfc3987_syntax`` until its one function is first called, then imports the real one.
#: Why: jsonschema imports ``rfc3987_syntax`` (reached through jupyter_events by JupyterHub and
#: every Jupyter server), which compiles ~35 Earley grammars at import, about 1 s of CPU per
#: process start (upstream: jupyter_server#1559, jsonschema#1428), and the hub tests start six
#: (two hubs, four servers). Nothing is validated differently: the first IRI check imports it.
LAZY_RFC3987_MODULE = "sci_test_lazy_rfc3987"
LAZY_RFC3987 = (Path(__file__).parent / f"{LAZY_RFC3987_MODULE}.py").read_text()


def skip_reason() -> str | None:
    """Why a real hub cannot run here, or ``None`` (CI has root, Node's proxy and ``useradd``)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not sys.platform.startswith("linux"):
        return "JupyterHub's LocalProcessSpawner tests need Linux"
    if os.geteuid() != 0:
        return "a hub with two Unix users needs root (setuid spawns, useradd); CI runs .ci/run as root"
    if shutil.which("useradd") is None and not Path("/usr/sbin/useradd").exists():
        return "useradd is missing"
    if proxy_command() is None:
        return "configurable-http-proxy is missing (npm install -g configurable-http-proxy; .ci/run does it)"
    if not Path(f"/usr/bin/python{version}").exists():
        return f"/usr/bin/python{version} is missing: the users need an interpreter outside root's home"
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed (the test extra has it)"
    return None


def proxy_command() -> str | None:
    """The configurable-http-proxy executable."""
    return shutil.which("configurable-http-proxy")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_user(name: str) -> None:
    """Create the Unix user when missing, then give them a fresh home (0755, as useradd makes here)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run([useradd, "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    home.mkdir(exist_ok=True)
    for child in home.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o755)


def _readable_by_others(path: Path) -> bool:
    """True when every directory up to ``path`` is searchable and ``path`` readable by others."""
    current = path.resolve()
    if not current.stat().st_mode & stat.S_IROTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in [current, *current.parents])


def _site_packages() -> list[Path]:
    return [Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]


def _not_sci_ext(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n in ("sci_ext.json", "sci-ext")]


#: Where the users' venvs are kept between runs: root's, 0755 (both users execute them).
VENV_CACHE = Path("/var/cache/sci_ext-tests")
#: Part of the cache key: bump it when ``_build_venv`` makes a different venv from the same inputs.
VENV_LAYOUT = "3"
#: Cached venvs unused for this long are removed when another one is used.
VENV_MAX_AGE = 7 * 24 * 3600


def _check_root_only(path: Path) -> None:
    """Raise unless ``path`` is root's and writable by root only.

    Both users' servers execute the cached venv: if one of them (or anyone but root) could
    write to it, they could run code as the other.
    """
    st = path.lstat()
    writable = not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if st.st_uid != 0 or writable:
        raise RuntimeError(
            f"{path}: the hub tests' venv cache must be owned by root and writable by root only "
            f"(it is uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}); remove or fix it"
        )


def _cache_root() -> Path:
    """``VENV_CACHE``, made 0755 when missing; it and its parents checked (root's, root-writable only)."""
    with suppress(FileExistsError):
        VENV_CACHE.mkdir(mode=0o755, parents=True)
        VENV_CACHE.chmod(0o755)  # whatever the umask
    for path in [VENV_CACHE, *VENV_CACHE.parents]:
        _check_root_only(path)
    return VENV_CACHE


def venv_key(wheel: Path) -> str:
    """What the users' venv is made from: the wheel's bytes, the interpreter, the test env's distributions."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    digest = hashlib.sha256(VENV_LAYOUT.encode())
    digest.update(hashlib.sha256(wheel.read_bytes()).digest())
    interpreter = Path(f"/usr/bin/python{version}").resolve()
    digest.update(f"{interpreter} {interpreter.stat().st_mtime_ns} {sys.prefix}".encode())
    for source in _site_packages():
        names = sorted(n for n in os.listdir(source) if n.endswith((".dist-info", ".egg-info", ".pth")))
        digest.update(f"{source}\n{chr(10).join(names)}\n".encode())
    # Jupyter's config and data files, copied into the venv: `jupyter ... enable` changes them.
    for sub in ("etc/jupyter", "share/jupyter"):
        for base, dirs, files in sorted(os.walk(Path(sys.prefix) / sub)):
            dirs[:] = [d for d in dirs if d not in _not_sci_ext(base, dirs)]  # as copied
            for name in sorted(set(files) - set(_not_sci_ext(base, files))):
                st = os.stat(os.path.join(base, name))
                digest.update(f"{base}/{name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def user_venv(wheel: Path) -> Path:
    """The users' venv for ``wheel``: reused from ``VENV_CACHE``, else built there (once per machine)."""
    cache = _cache_root()
    entry = cache / f"hub-venv-{venv_key(wheel)}"
    with FileLock(str(cache / ".lock")):
        if not (entry / "complete").exists():
            shutil.rmtree(entry, ignore_errors=True)  # a build that did not finish
            entry.mkdir(mode=0o755)
            _build_venv(entry, wheel)
            (entry / "complete").write_text(f"{wheel.name}\n")
        # Checked at every use, not only when built: the users run it.
        for base, dirs, files in os.walk(entry):
            for name in [".", *dirs, *files]:
                _check_root_only(Path(base, name))
        os.utime(entry / "complete")
        for old in cache.glob("hub-venv-*"):
            if old == entry:
                continue
            marker = old / "complete"
            # Builds only happen under this lock: one without its marker is dead.
            if not marker.exists() or time.time() - marker.stat().st_mtime > VENV_MAX_AGE:
                shutil.rmtree(old, ignore_errors=True)
    return entry / "venv"


def _build_venv(root: Path, wheel: Path) -> None:
    """A venv both users can run in ``root/venv``: system Python + the wheel + the test env's packages."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    venv = root / "venv"
    subprocess.run([f"/usr/bin/python{version}", "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{version}" / "site-packages"
    lines = []
    for source in _site_packages():
        if source.resolve() == site.resolve():
            continue
        if not _readable_by_others(source):
            copy = root / "deps" / str(len(lines))
            copy.parent.mkdir(exist_ok=True)
            # Hard links: instant on one filesystem; a plain copy otherwise.
            if subprocess.run(["cp", "-al", str(source), str(copy)], capture_output=True).returncode != 0:
                shutil.copytree(source, copy, symlinks=True)
            source = copy
        lines.append(f"import site; site.addsitedir({str(source)!r})")
    # The wheel, installed as a user would: its data files enable both extensions.
    subprocess.run(
        # --ignore-installed: without it pip "upgrades" the running venv's own (editable) sci_ext
        # by uninstalling it there before installing under --prefix.
        [
            *(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed"),
            *("--prefix", str(venv), str(wheel)),
        ],
        check=True,
        capture_output=True,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")},
    )
    (site / "zz_sci_test_deps.pth").write_text("\n".join(lines) + "\n")
    # After the dependencies' .pth (alphabetical order): rfc3987_syntax must be on the path.
    (site / f"{LAZY_RFC3987_MODULE}.py").write_text(LAZY_RFC3987)
    (site / f"zzz_{LAZY_RFC3987_MODULE}.pth").write_text(f"import {LAZY_RFC3987_MODULE}\n")
    # Jupyter's own extensions (JupyterLab, widgets) as if installed in this venv: their
    # config and data files; sci_ext's come from its wheel above.
    for sub in ("etc/jupyter", "share/jupyter"):
        source = Path(sys.prefix) / sub
        if source.is_dir():
            shutil.copytree(source, venv / sub, dirs_exist_ok=True, ignore=_not_sci_ext)
    for path in [root, *root.rglob("*")]:
        if path.is_symlink() or (path.parts[len(root.parts) :][:1] == ("deps",)):
            continue
        mode = stat.S_IMODE(path.stat().st_mode) & ~(stat.S_IWGRP | stat.S_IWOTH)
        path.chmod(mode | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0))


@dataclass
class Kernel:
    """A kernel in a user's server, driven over the proxy's websocket like a browser does."""

    hub: Hub
    user: str
    token: str
    kernel_id: str
    ws: Any = None
    session: str = field(default_factory=lambda: uuid.uuid4().hex)

    def connect(self) -> None:
        import websocket

        if self.ws is not None:
            with suppress(Exception):
                self.ws.close()
        url = self.hub.url.replace("http://", "ws://") + f"/user/{self.user}/api/kernels/{self.kernel_id}/channels"
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {self.token}"], timeout=60)

    def run(self, code: str, timeout: float = 60) -> dict[str, Any]:
        """Execute ``code``; returns ``{"text": stdout + results, "error": ename or None}``."""
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": self.user,
                        "session": self.session,
                        "msg_type": "execute_request",
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "store_history": True, "allow_stdin": False},
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        text: list[str] = []
        error: str | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            content = msg["content"]
            if kind == "stream":
                text.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                text.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                return {"text": "".join(text), "error": error}
        raise TimeoutError(f"cell did not finish in {timeout} s: {code[:80]!r}")

    def close(self) -> None:
        with suppress(Exception):
            self.ws.close()
        with suppress(Exception):
            self.hub.user_request(self.user, "DELETE", f"/api/kernels/{self.kernel_id}", token=self.token)


@dataclass
class Hub:
    """One running JupyterHub, its proxy, and what the tests need to drive them."""

    root: Path
    venv: Path
    public_port: int
    hub_port: int
    proxy_api_port: int
    admin_token: str
    proxy_token: str
    process: subprocess.Popen[bytes] | None = None
    #: The next hub process, imported and waiting (:meth:`prepare_spare`).
    spare: subprocess.Popen[bytes] | None = None
    proxy: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    #: 0: the hub takes activity only from what each server reports (the proxy counts every
    #: proxied request, scrapes included); see docs/jupyterhub.md, "Idle culling".
    last_activity_interval: int = 0

    @property
    def url(self) -> str:
        """The public URL (the proxy)."""
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def write_config(self) -> Path:
        config = self.root / "jupyterhub_config.py"
        config.write_text(
            CONFIG.format(
                root=str(self.root),
                public_port=self.public_port,
                hub_port=self.hub_port,
                proxy_api_port=self.proxy_api_port,
                proxy_token=self.proxy_token,
                password=PASSWORD,
                users=sorted(USERS),
                python=self.python,
                admin_token=self.admin_token,
                last_activity_interval=self.last_activity_interval,
            )
        )
        return config

    def settings(self, user: str, **values: Any) -> None:
        """Set a user's spawn settings (``env``, ``args``, ``umask``) for their next start."""
        path = self.root / "user_settings.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data[user] = values
        # Atomically: a spawn may be reading the file (the spawner reads it at every spawn).
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(data))
        temp.replace(path)

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith(("SCI_EXT_", "XDG_"))}

    def launch_proxy(self) -> None:
        """Start configurable-http-proxy on its own, with the arguments the hub would give it."""
        command = [
            str(proxy_command()),
            *("--ip", "127.0.0.1", "--port", str(self.public_port)),
            *("--api-ip", "127.0.0.1", "--api-port", str(self.proxy_api_port)),
            *("--error-target", f"http://127.0.0.1:{self.hub_port}/hub/error"),
        ]
        self.proxy = subprocess.Popen(
            command,
            cwd=self.root,
            env={**self._env(), "CONFIGPROXY_AUTH_TOKEN": self.proxy_token},
            stdout=(self.root / "proxy.log").open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_proxy(self) -> None:
        """Wait until the proxy's API answers."""
        assert self.proxy is not None
        headers = {"Authorization": f"token {self.proxy_token}"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proxy.poll() is not None:
                raise RuntimeError(f"the proxy exited: {(self.root / 'proxy.log').read_text()[-3000:]}")
            with suppress(requests.RequestException):
                url = f"http://127.0.0.1:{self.proxy_api_port}/api/routes"
                if requests.get(url, headers=headers, timeout=2).ok:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the proxy did not start in 30 s: {(self.root / 'proxy.log').read_text()[-3000:]}")

    def start(self) -> None:
        """Start the hub and wait for its API through the proxy (which must be running)."""
        self.launch()
        self.wait_up()

    def launch(self) -> None:
        """Start the hub process (the spare one when there is one; see :meth:`wait_up`)."""
        if self.spare is not None:
            self.process, self.spare = self.spare, None
            assert self.process.stdin is not None
            self.process.stdin.write(b"go\n")  # it has imported JupyterHub: now it starts
            self.process.stdin.close()
            return
        script = f"{self._lazy_rfc3987()}import sys, jupyterhub.app as app\nsys.argv[0] = 'jupyterhub'\napp.main()\n"
        self.process = self._popen_hub(subprocess.DEVNULL, [sys.executable, "-c", script])

    def prepare_spare(self) -> None:
        """Start the next hub process up to its imports, for a restart: :meth:`launch` lets it go on.

        JupyterHub's imports take seconds of CPU (``import jupyterhub.app`` ~2.7 s here). A
        restart test is about what the new hub does once it runs, so the spare process
        imports while the old hub still runs; everything after the imports (config, database,
        finding the servers, routes) happens at the restart as in any restart.
        """
        if self.spare is None:
            script = self._lazy_rfc3987() + (
                "import sys, jupyterhub.app as app\n"
                "if sys.stdin.readline().strip() == 'go':\n"
                "    sys.argv = ['jupyterhub', *sys.argv[1:]]\n"
                "    app.main()\n"
            )
            self.spare = self._popen_hub(subprocess.PIPE, [sys.executable, "-c", script])

    def _lazy_rfc3987(self) -> str:
        """Code that makes the hub import ``rfc3987_syntax`` when first used (see ``LAZY_RFC3987``)."""
        (self.root / f"{LAZY_RFC3987_MODULE}.py").write_text(LAZY_RFC3987)
        return f"import sys\nsys.path.append({str(self.root)!r})\nimport {LAZY_RFC3987_MODULE}\n"

    def _popen_hub(self, stdin: int, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.root / "hub.log").open("ab")
        return subprocess.Popen(
            [*command, "-f", str(self.root / "jupyterhub_config.py")],
            cwd=self.root,
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=stdin,
            start_new_session=True,
        )

    def wait_up(self) -> None:
        """Wait until the hub's API answers through the proxy."""
        assert self.process is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited: {self.log_tail()}")
            with suppress(requests.RequestException):
                if requests.get(f"{self.url}/hub/api/", timeout=2).ok:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the hub did not start in 60 s: {self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the hub and wait; the proxy and the servers keep running (``cleanup_servers = False``)."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        """Kill the hub (nothing of it is kept), every process of the test users, and the proxy."""
        for process in (self.process, self.spare):
            if process is not None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                process.wait(10)
        self.process = self.spare = None
        for user in UNIX_USERS:
            subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
        if self.proxy is not None:
            self.proxy.terminate()
            try:
                self.proxy.wait(10)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait(10)
            self.proxy = None

    def log_tail(self, chars: int = 3000) -> str:
        path = self.root / "hub.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A call to the hub's REST API as the admin service."""
        headers = {"Authorization": f"token {self.admin_token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=120, **kwargs)

    def start_servers(self, *users: str) -> None:
        """Start the servers of ``users`` together and wait until each answers through the proxy."""
        # Together: the hub answers a spawn request only when the server is up (or after 10 s).
        with ThreadPoolExecutor(len(users)) as pool:
            for res in pool.map(lambda user: self.api("POST", f"/users/{user}/server"), users):
                assert res.status_code in (201, 202, 400), res.text  # 400: already running
        waiting = set(users)
        deadline = time.monotonic() + 120
        while waiting and time.monotonic() < deadline:
            for user in sorted(waiting):
                server = self.api("GET", f"/users/{user}").json().get("servers", {}).get("")
                if server and server.get("ready"):
                    if self.user_request(user, "GET", "/api/status", token=self.token(user)).status_code == 200:
                        waiting.discard(user)
            time.sleep(0.1)
        if waiting:
            raise RuntimeError(f"the servers of {sorted(waiting)} did not start: {self.log_tail()}")

    def start_server(self, user: str) -> None:
        """Start ``user``'s server and wait until it answers through the proxy."""
        self.start_servers(user)

    def wait_running(self, user: str, timeout: float = 60) -> None:
        """Wait until the hub reports ``user``'s server ready and it answers through the proxy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with suppress(requests.RequestException):
                server = self.api("GET", f"/users/{user}").json().get("servers", {}).get("")
                status = self.user_request(user, "GET", "/api/status", token=self.token(user)).status_code
                if server and server.get("ready") and status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{user}'s server is not running after the hub restart: {self.log_tail()}")

    def stop_server(self, user: str) -> None:
        """Stop ``user``'s server and wait until the hub says it stopped."""
        self.api("DELETE", f"/users/{user}/server")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.api("GET", f"/users/{user}").json().get("servers"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{user}'s server did not stop")

    def token(self, user: str) -> str:
        """A hub API token of ``user`` (made once through the hub API)."""
        if user not in self.tokens:
            res = self.api("POST", f"/users/{user}/tokens", json={"note": "sci_ext tests", "expires_in": 3600})
            assert res.status_code == 201, res.text
            self.tokens[user] = res.json()["token"]
        return self.tokens[user]

    def user_request(
        self,
        user: str,
        method: str,
        path: str,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """A request to ``/user/USER/PATH`` through the proxy (``token`` as a hub token)."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"token {token}"
        return requests.request(
            method, f"{self.url}/user/{user}{path}", headers=all_headers, timeout=60, allow_redirects=False, **kwargs
        )

    def kernel(self, user: str) -> Kernel:
        """A new kernel in ``user``'s server."""
        token = self.token(user)
        res = self.user_request(user, "POST", "/api/kernels", token=token, json={"name": "python3"})
        assert res.status_code == 201, res.text
        kernel = Kernel(self, user, token, res.json()["id"])
        kernel.connect()
        return kernel

    def run_as(self, user: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command as ``user`` (``runuser``), with their home and this hub's venv first on PATH."""
        home = pwd.getpwnam(user).pw_dir
        variables = {"HOME": home, "PATH": f"{self.venv}/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **(env or {})}
        command = ["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in variables.items()], *argv]
        return subprocess.run(command, capture_output=True, text=True, cwd=home, timeout=120)


def start_hub(wheel: Callable[[], Path]) -> Iterator[Hub]:
    """Start the proxy and the hub, yield the hub, stop everything.

    The hub starts (its imports take seconds) while ``wheel()`` is built and the users' venv
    is found in the cache: the config names ``ROOT/venv``, a link to it made before any spawn.
    """
    # One hub run per machine at a time: two runs would kill each other's user processes.
    lock = FileLock(str(_cache_root() / "hub-run.lock"))
    try:
        lock.acquire(timeout=900)
    except Timeout:
        raise RuntimeError(f"another hub test run has held {lock.lock_file} for 15 minutes") from None
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="sci_hub_", dir="/tmp"))
    root.chmod(0o755)
    hub = Hub(root, root / "venv", free_port(), free_port(), free_port(), secrets.token_hex(32), secrets.token_hex(32))
    try:
        hub.launch_proxy()
        hub.write_config()
        for user in UNIX_USERS:
            ensure_user(user)
        hub.wait_proxy()
        hub.launch()
        hub.venv.symlink_to(user_venv(wheel()), target_is_directory=True)
        hub.wait_up()
        print(f"[hub] wheel, venv, proxy and hub up in {time.monotonic() - began:.1f} s", file=sys.stderr)
        yield hub
    finally:
        hub.close()
        keep = os.environ.get("SCI_EXT_HUB_LOG")  # where to keep the hub's log (servers' included), if set
        if keep:
            with suppress(OSError):
                shutil.copyfile(root / "hub.log", keep)
        shutil.rmtree(root, ignore_errors=True)
        lock.release()


def sci_dirs(home: Path) -> Iterator[Path]:
    """Every directory sci_ext has in ``home`` (the ``sci_ext`` directories and all below them)."""
    for base in (".local/state", ".cache", ".config", ".local/share"):
        top = home / base / "sci_ext"
        if top.is_dir():
            yield top
            yield from (p for p in top.rglob("*") if p.is_dir() and not p.is_symlink())
