"""Two real Unix users for the cross-user attacks: creation, a Python both can run, ``runuser``.

The test process (root in CI) creates ``sci_attacker`` and ``sci_victim`` when they
are missing (``.ci/run`` creates them too), and gives both users a copy of this
checkout's ``sci_ext`` plus the installed packages it imports, in a world-readable
temporary directory: the checkout and the virtual environment may live where other
users cannot read (``/root``).  The interpreter is the venv's when the users can run
it, else the system ``python3.X`` of the same minor version (compiled extensions of
the same ABI load in both).  Without root, or without such an interpreter, the tests
skip and say why; CI runs as root and never skips.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ATTACKER = "sci_attacker"
VICTIM = "sci_victim"
REPO = Path(__file__).resolve().parents[3]

#: What the attack scripts exercise: the probe imports and runs these so that every
#: module they load (lazily too) is copied for the other users.
PROBE = """
import json, os, sys, tempfile
from pathlib import Path
d = Path(tempfile.mkdtemp())
os.environ.update({"XDG_CONFIG_HOME": str(d / "c"), "XDG_STATE_HOME": str(d / "s"),
                   "XDG_CACHE_HOME": str(d / "k"), "XDG_DATA_HOME": str(d / "d")})
import diskcache, redis, filelock, tomlkit
try:
    import async_timeout  # redis needs it on Python < 3.11.3 (a system Python the users may run)
except ImportError:
    pass
from sci_ext.core.config import ConfigManager
m = ConfigManager(); m.set("rag.top_k", 3); m.save("user")
from sci_ext.core.resilience import CircuitBreaker
CircuitBreaker("probe").call(lambda: 1)
from sci_ext.core.security.audit import AuditLog
AuditLog(d / "a" / "audit.jsonl").append("probe")
from sci_ext.core.security import get_security_manager
from sci_ext.core.cache.serialize import pack, unpack
from sci_ext.core.cache.store import RedisStore, DiskStore
from sci_ext.core.cache import cache_result
unpack(bytearray(pack({"a": 1}).to_bytes()))
site = [p for p in sys.path if p.endswith("site-packages")]
names = set()
for mod in list(sys.modules.values()):
    f = getattr(mod, "__file__", None) or ""
    for s in site:
        if f.startswith(s + os.sep):
            names.add(Path(f).relative_to(s).parts[0])
print(json.dumps({"site": site, "names": sorted(names)}))
"""


@dataclass
class Users:
    """The attack environment: users, interpreter, library copy and a sticky shared directory."""

    root: Path
    lib: Path
    python: str
    shared: Path
    attacks: list[tuple[str, str]] = field(default_factory=list)

    def home(self, name: str, user: str = VICTIM, mode: int = 0o700) -> Path:
        """A fresh home-like directory of ``user``."""
        path = self.root / name
        path.mkdir()
        shutil.chown(path, user, user)
        path.chmod(mode)
        return path

    def sticky(self, name: str) -> Path:
        """A fresh mode-1777 directory standing in for ``/tmp``."""
        path = self.shared / name
        path.mkdir()
        path.chmod(0o1777)
        return path

    def run(
        self,
        user: str,
        code: str,
        *,
        home: Path | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        umask: int | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run Python ``code`` as ``user`` with a clean environment (only what is given)."""
        home = home or Path(pwd.getpwnam(user).pw_dir)
        variables = {
            "HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(self.lib),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
            **(env or {}),
        }
        prefix = f"import os; os.umask({umask:#o})\n" if umask is not None else ""
        command = ["runuser", "-u", user, "--", "env", "-i"]
        command += [f"{k}={v}" for k, v in variables.items()]
        command += [self.python, "-c", prefix + code]
        return subprocess.run(command, capture_output=True, text=True, cwd=cwd or self.root, timeout=120)

    def record(self, attack: str, outcome: str) -> None:
        """Count an attack that was tried (for the figures printed at the end)."""
        self.attacks.append((attack, outcome))


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _ensure_users() -> None:
    if not sys.platform.startswith("linux") or shutil.which("runuser") is None:
        pytest.skip("cross-user attacks need Linux and runuser")
    if os.geteuid() != 0:
        pytest.skip("cross-user attacks need root (to create the users and runuser); CI runs .ci/run as root")
    for name in (ATTACKER, VICTIM):
        if not _user_exists(name):
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            res = subprocess.run(
                [useradd, "--create-home", "--shell", "/bin/bash", name], capture_output=True, text=True
            )
            if res.returncode != 0 and not _user_exists(name):
                pytest.skip(f"cannot create user {name}: {res.stderr.strip()}")


def _pick_python(lib: Path) -> str:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [os.path.realpath(sys.executable), f"/usr/bin/python{version}", shutil.which(f"python{version}")]
    for candidate in dict.fromkeys(c for c in candidates if c):
        res = subprocess.run(
            [
                "runuser",
                "-u",
                VICTIM,
                "--",
                "env",
                "-i",
                f"PYTHONPATH={lib}",
                candidate,
                "-c",
                "import sys, sci_ext;print(sys.version_info[:2])",
            ],
            capture_output=True,
            text=True,
        )
        if res.returncode == 0 and res.stdout.strip() == str(tuple(sys.version_info[:2])):
            return candidate
    pytest.skip(f"no Python {version} the test users can run (the venv's interpreter is not readable by them)")


def _copy_library(lib: Path) -> None:
    """sci_ext from this checkout and the installed modules the attack scripts load."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "sci_ext", lib / "sci_ext", ignore=ignore)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"probe failed: {res.stderr[-2000:]}")
    found = json.loads(res.stdout.strip().splitlines()[-1])
    for site in map(Path, found["site"]):
        for name in found["names"]:
            source = site / name
            if name == "sci_ext" or not source.exists() or (lib / name).exists():
                continue
            if source.is_dir():
                shutil.copytree(source, lib / name, ignore=ignore, symlinks=True)
                libs = site / f"{name}.libs"  # bundled shared libraries of manylinux wheels
                if libs.is_dir() and not (lib / libs.name).exists():
                    shutil.copytree(libs, lib / libs.name)
            else:
                shutil.copy2(source, lib / name)
        for meta in site.glob("*.dist-info"):  # importlib.metadata lookups (versions)
            if not (lib / meta.name).exists():
                shutil.copytree(meta, lib / meta.name)
    for path in [lib, *lib.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644 | (path.stat().st_mode & 0o111))


def make_users() -> Users:
    """Create (or find) the users and the shared environment; skips with a reason when impossible."""
    _ensure_users()
    root = Path(tempfile.mkdtemp(prefix="sci_ext-xuser-", dir="/tmp"))
    root.chmod(0o755)
    lib = root / "lib"
    lib.mkdir()
    _copy_library(lib)
    shared = root / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    return Users(root=root, lib=lib, python=_pick_python(lib), shared=shared)
