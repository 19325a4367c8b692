"""The first ``%%cached`` hit after a kernel restart, in environments of growing size.

What a user waits for after restarting a kernel: the first hit, in a fresh
process, before anything is warm.  Measured for a small cell and for a cell
holding a large array, in the project venv and in venvs that add generated
dummy distributions (real ``*.dist-info`` directories with METADATA, RECORD and,
for half of them, ``top_level.txt``; the project's packages come in through a
``.pth`` that adds the project's site-packages), against ``joblib.Memory``'s
first hit in a fresh process of the same venv.

Each sci_ext measurement is one fresh real kernel (ipykernel, started with the
venv's interpreter) with ``%load_ext sci_ext`` done, as after a restart: the
time from the request to idle, minus an empty cell's round trip in the same
kernel.  An earlier kernel stored the entry (and left the version index on
disk, as any earlier kernel would).  The joblib peer is a fresh process calling
a ``Memory``-cached function once.  numpy is imported before timing in both:
the array's library is not the cache's cost.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_JOBLIB_CHILD = textwrap.dedent(
    r"""
    import json, os, sys, time
    import numpy, joblib  # imported before timing, as the kernel below has numpy and sci_ext loaded
    sys.path.insert(0, os.environ["BENCH_WORK"])
    from bench_make import make
    cached = joblib.Memory(os.path.join(os.environ["BENCH_WORK"], "joblib"), verbose=0).cache(make)
    start, cpu = time.perf_counter(), time.process_time()
    cached(int(sys.argv[1]))
    print(json.dumps({"ms": (time.perf_counter() - start) * 1e3, "cpu": (time.process_time() - cpu) * 1e3}))
    """
)

_MAKE = "import numpy as np\n\n\ndef make(n):\n    return np.random.default_rng(0).random(n)\n"


def _site_packages(prefix: Path) -> Path:
    rel = Path(sysconfig.get_path("purelib", vars={"base": "", "platbase": ""}).lstrip("/"))
    return prefix / rel


def build_venv(where: Path, extra: int) -> Path:
    """A venv whose site-packages holds ``extra`` generated distributions plus a .pth to ours."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    site = _site_packages(where)
    ours = Path(sysconfig.get_path("purelib"))
    (site / "zz_project.pth").write_text(f"import site; site.addsitedir({str(ours)!r})\n")
    for i in range(extra):
        name = f"benchdummy_{i:04d}"
        pkg = site / name
        pkg.mkdir()
        files = [f"{name}/__init__.py"] + [f"{name}/mod_{j}.py" for j in range(20)]
        for rel in files:
            (site / rel).write_text("")
        meta = site / f"{name}-1.{i}.0.dist-info"
        meta.mkdir()
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.{i}.0\n\n")
        (meta / "INSTALLER").write_text("bench\n")
        (meta / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        if i % 2 == 0:
            (meta / "top_level.txt").write_text(name + "\n")
        record = [f"{rel},sha256=x,0" for rel in files]
        record += [f"{meta.name}/{f},," for f in ("METADATA", "INSTALLER", "WHEEL", "RECORD")]
        (meta / "RECORD").write_text("\n".join(record) + "\n")
    return where / "bin" / "python"


def _env(work: Path, tag: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCI_EXT_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        PYTHONPATH=str(REPO),
        BENCH_WORK=str(work),
        XDG_CACHE_HOME=str(work / tag / "cache"),
        XDG_STATE_HOME=str(work / tag / "state"),
        XDG_CONFIG_HOME=str(work / tag / "config"),
        SCI_EXT_CORE__HOT_RELOAD="false",
    )
    return env


def _joblib(python: Path, n: int, env: dict[str, str]) -> tuple[float, float]:
    res = subprocess.run(
        [str(python), "-c", _JOBLIB_CHILD, str(n)], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"joblib child failed:\n{res.stderr[-2000:]}")
    data = json.loads(res.stdout.strip().splitlines()[-1])
    return float(data["ms"]), float(data["cpu"])


class _Kernel:
    """A real IPython kernel of the venv of ``python``, sci_ext loaded, numpy imported."""

    def __init__(self, python: Path, env: dict[str, str], cwd: Path) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_spec.argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.run("%load_ext sci_ext\nimport numpy")

    def run(self, code: str) -> tuple[float, str]:
        """Seconds from the request to the kernel going idle, and the text of errors/stderr."""
        start = time.perf_counter()
        msg_id = self.kc.execute(code)
        errors = ""
        while True:
            msg = self.kc.get_iopub_msg(timeout=600)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error" or (kind == "stream" and content.get("name") == "stderr"):
                errors += str(content.get("evalue", content.get("text", "")))
            if kind == "status" and content["execution_state"] == "idle":
                return time.perf_counter() - start, errors

    def value(self, code: str) -> str:
        """The text/plain result of ``code``."""
        msg_id = self.kc.execute(code)
        while True:
            msg = self.kc.get_iopub_msg(timeout=600)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"])[-1500:])
            if msg["msg_type"] == "execute_result":
                return str(msg["content"]["data"]["text/plain"]).strip("'")

    def status(self) -> str:
        return self.value("from sci_ext.kernel.cellcache.session import SESSION as _S\n_S.last.status")

    def timed(self, line: str, body: str) -> tuple[float, float]:
        """Wall and CPU ms of ``%%cached line`` + ``body`` run inside the kernel."""
        code = (
            "import time as _t\n_w, _c = _t.perf_counter(), _t.process_time()\n"
            f"get_ipython().run_cell_magic('cached', {line!r}, {body!r})\n"
            "_w, _c = _t.perf_counter() - _w, _t.process_time() - _c\n"
            "f'{_w * 1e3:.3f} {_c * 1e3:.3f}'"
        )
        wall, cpu = self.value(code).split()
        return float(wall), float(cpu)

    def environment(self) -> tuple[int, float]:
        """Installed distributions, and the ms of the full scan the old version lookup made."""
        text = self.value(
            "import importlib.metadata as _m, time as _t\n_n = sum(1 for _ in _m.distributions())\n"
            "_s = _t.perf_counter(); _m.packages_distributions(); f'{_n} {(_t.perf_counter() - _s) * 1e3:.3f}'"
        )
        count, scan = text.split()
        return int(count), float(scan)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _first_hit(python: Path, env: dict[str, str], work: Path, line: str, body: str) -> tuple[float, float]:
    """Wall and CPU ms of the first run of a cached cell in a fresh kernel (must be a hit)."""
    kernel = _Kernel(python, env, work)
    try:
        wall, cpu = kernel.timed(line, body)
        status = kernel.status()
        if status != "hit":
            raise RuntimeError(f"expected a first hit in a fresh kernel, got {status}")
        return wall, cpu
    finally:
        kernel.close()


def measure(python: Path, work: Path, tag: str, mbytes: int, repeat: int) -> dict[str, float]:
    """First-hit times (ms, median of ``repeat`` fresh kernels) in the venv of ``python``."""
    env = _env(work, tag)
    n = mbytes * 2**20 // 8
    cells = {
        "small": ("--quiet small", "d = {'a': 1, 'b': [1, 2, 3]}\nprint('done', len(d))"),
        "large": ("--quiet large", f"import numpy as np\nstate = np.random.default_rng(0).random({n})"),
    }
    out: dict[str, float] = {}
    earlier = _Kernel(python, env, work)  # the kernel before the restart: computes and stores
    try:
        for line, body in cells.values():
            earlier.timed(line, body)
            if earlier.status() != "miss":
                raise RuntimeError("expected a miss in the first kernel")
        count, scan = earlier.environment()
        out["dists"], out["scan"] = float(count), scan
    finally:
        earlier.close()
    for label, (line, body) in cells.items():
        runs = [_first_hit(python, env, work, line, body) for _ in range(repeat)]
        out[label] = statistics.median(wall for wall, _ in runs)
        out[label + "_cpu"] = statistics.median(cpu for _, cpu in runs)
    (work / "bench_make.py").write_text(_MAKE)
    _joblib(python, n, env)  # stores
    peer = [_joblib(python, n, env) for _ in range(repeat)]
    out["joblib"] = statistics.median(wall for wall, _ in peer)
    out["joblib_cpu"] = statistics.median(cpu for _, cpu in peer)
    return out


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points."""
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def run(work: Path, extras: list[int], mbytes: int, repeat: int) -> None:
    """Measure and print the first-hit section of the benchmark."""
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for extra in extras:
        if extra == 0:
            python, label = Path(sys.executable), "project venv"
        else:
            python, label = build_venv(work / f"venv{extra}", extra), f"venv + {extra} generated"
        r = measure(python, work, f"v{extra}", mbytes, repeat)
        rows.append((label, r))
        shutil.rmtree(work / f"venv{extra}", ignore_errors=True)
    print(f"[4] first hit after a restart (fresh kernel, median of {repeat}; wall ms, CPU ms in brackets):")
    for label, r in rows:
        print(
            f"    {label:<24} {int(r['dists']):>4} distributions | small cell {r['small']:.1f} ms"
            f" [{r['small_cpu']:.1f}] | {mbytes} MB array {r['large']:.1f} ms [{r['large_cpu']:.1f}]"
            f" | joblib.Memory first hit {r['joblib']:.1f} ms [{r['joblib_cpu']:.1f}]"
            f" | ratio sci_ext/joblib = {r['large'] / r['joblib']:.2f}x [{r['large_cpu'] / r['joblib_cpu']:.2f}x]"
            f" | full scan (old lookup) {r['scan']:.0f} ms"
        )
    keys = ("small", "small_cpu", "large", "large_cpu", "joblib", "scan")
    per100 = {key: slope([(r["dists"], r[key]) for _, r in rows]) * 100 for key in keys}
    print(
        f"    slope: small cell {per100['small']:+.2f} ms per 100 distributions [CPU {per100['small_cpu']:+.2f}]"
        f" | array {per100['large']:+.2f} [CPU {per100['large_cpu']:+.2f}] | joblib {per100['joblib']:+.2f}"
        f" | the old full scan {per100['scan']:+.2f} (goal: slope ~ 0)"
    )
    worst = max(r["small"] for _, r in rows)
    worst_cpu = max(r["small_cpu"] for _, r in rows)
    print(f"    worst small-cell first hit = {worst:.1f} ms wall, {worst_cpu:.1f} ms CPU (goal <= 50 ms)")
