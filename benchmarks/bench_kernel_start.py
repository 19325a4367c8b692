"""Kernel start to first executed cell, with sci_ext loaded by the kernel's config versus without.

What a user waits for when a notebook opens: from starting the kernel process to the
reply of the first cell.  Two IPython profiles that differ only by one line,
``c.InteractiveShellApp.extensions = ["sci_ext"]`` (as ``ipython_kernel_config.py`` of
a deployment sets it) and ``[]``; kernels of both are started alternately (so drift of a
shared machine hits both sides), REPEAT each, under ``nice``, with warm bytecode caches
(PYTHONDONTWRITEBYTECODE removed for the kernels; one unmeasured start of each writes
them).  The first cell is ``x = 1``: it also pays what sci_ext defers to the first cell
(the configuration, the log, the telemetry monitor).  The best start of each side is
compared as information; the ratio is that of the median **CPU time of the kernel process**
up to the end of the first cell (``time.process_time()`` read by the next cell), which other
processes on a busy machine cannot inflate.  Goal: <= 1.1x.

What sci_ext leaves to its monitor thread's first tick (reading the configuration,
configuring the JSON log, creating the metrics with prometheus_client: up to 5 s after
the first cell, in the background, when no config file or setting variable made the first
cell read the configuration already) is not in the ratio: no cell waits for it unless one
runs at that moment.  Without ``--quick`` one more kernel of each side measures it (the
kernel's CPU time over a wait past the first tick, with minus without), as information.

Run: ``python benchmarks/bench_kernel_start.py [--quick] [--kernels N]``.  A kernel start's CPU
time still varies by +-10 % on a loaded machine: ``scripts/bench_regress.py`` runs 6 per side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CONFIG = "c = get_config()  # noqa: F821\nc.InteractiveShellApp.extensions = {extensions!r}\n"


def make_env(home: Path, extensions: list[str]) -> dict[str, str]:
    """An environment whose IPython profile loads ``extensions`` in every kernel."""
    ipython_dir = home / ("ipython-with" if extensions else "ipython-without")
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(CONFIG.format(extensions=extensions))
    out = {**os.environ, "PYTHONPATH": str(REPO), "IPYTHONDIR": str(ipython_dir)}
    out.pop("PYTHONDONTWRITEBYTECODE", None)  # users have bytecode caches
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        out[var] = str(home / var.lower())
    return out


def start_to_first_cell(env: dict[str, str], cwd: str, wait: float = 0.0) -> tuple[float, float, float]:
    """Seconds from starting a kernel to the reply of its first cell: wall time, and the kernel's CPU time.

    With ``wait``, the third figure is the kernel's CPU time over ``wait`` seconds of idle after that.
    """
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    nice = ["nice", "-n", "5"] if shutil.which("nice") else []
    km.kernel_spec.argv = [*nice, sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    start = time.perf_counter()
    km.start_kernel(env=env, cwd=cwd)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        reply = kc.execute_interactive("x = 1", timeout=120, output_hook=lambda msg: None)
        elapsed = time.perf_counter() - start
        assert reply["content"]["status"] == "ok", reply["content"]
        # CPU time of the kernel process by then (start-up, %load_ext, the first cell and what the
        # extension deferred to its end): what other processes on a busy machine cannot add to.
        check = kc.execute_interactive(
            "import sys, time; print('sci_ext.kernel' in sys.modules, time.process_time())",
            timeout=60,
            output_hook=_collect,
        )
        assert check["content"]["status"] == "ok"
        loaded, cpu = _seen.pop().split()
        _seen.append(loaded)
        idle = 0.0
        if wait:
            time.sleep(wait)
            kc.execute_interactive("print(time.process_time())", timeout=60, output_hook=_collect)
            idle = float(_seen.pop()) - float(cpu)
        return elapsed, float(cpu), idle
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


_seen: list[str] = []

#: Past the monitor's first tick (telemetry's DEFAULT_INTERVAL, 5 s, after the first cell), with margin.
TICK_WAIT = 6.5


def _collect(msg: dict[str, object]) -> None:
    if msg.get("msg_type") == "stream":
        _seen.append(str(msg["content"]["text"]).strip())  # type: ignore[index]


def main() -> None:
    """Start kernels alternately with and without sci_ext; print the figures and the ratio."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer kernels, no background figure")
    parser.add_argument("--kernels", type=int, metavar="N", help="kernels per side (default 10, --quick 2)")
    args = parser.parse_args()
    repeat = args.kernels or (2 if args.quick else 10)
    with tempfile.TemporaryDirectory(prefix="sci-bench-start-") as tmp:
        home = Path(tmp)
        with_env, without_env = make_env(home, ["sci_ext"]), make_env(home, [])
        start_to_first_cell(with_env, tmp)  # writes the bytecode caches, warms the disk
        start_to_first_cell(without_env, tmp)
        _seen.clear()
        with_runs, without_runs = [], []
        for _ in range(repeat):
            without_runs.append(start_to_first_cell(without_env, tmp))
            with_runs.append(start_to_first_cell(with_env, tmp))
        background = None
        if not args.quick:
            background = (
                start_to_first_cell(with_env, tmp, TICK_WAIT)[2] - start_to_first_cell(without_env, tmp, TICK_WAIT)[2]
            )
            del _seen[-2:]  # their "loaded" answers (True, False): not part of the alternation checked below
    with_times, without_times = [w for w, _, _ in with_runs], [w for w, _, _ in without_runs]
    with_cpu, without_cpu = [c for _, c, _ in with_runs], [c for _, c, _ in without_runs]
    # The check cell printed whether sci_ext was loaded: False, True, False, True, ...
    if _seen != ["False", "True"] * repeat:
        raise SystemExit(f"the profiles did not load what they should: {_seen}")
    median = statistics.median
    print(f"kernels per side                      : {repeat}")
    print(f"start to first cell, without sci_ext  : {min(without_times) * 1000:7.1f} ms best, "
          f"{median(without_times) * 1000:7.1f} ms median wall; {median(without_cpu) * 1000:7.1f} ms CPU")  # fmt: skip
    print(f"start to first cell, with sci_ext     : {min(with_times) * 1000:7.1f} ms best, "
          f"{median(with_times) * 1000:7.1f} ms median wall; {median(with_cpu) * 1000:7.1f} ms CPU")  # fmt: skip
    print(f"wall-time ratio of the medians        : {median(with_times) / median(without_times):.3f}x")
    # The kernel's CPU time is the figure to compare: wall time on a shared machine swings by +-20 %.
    if background is not None:
        print(f"left to the monitor's first tick (background), with minus without: {background * 1000:7.1f} ms CPU")
    print(f"ratio kernel start to first cell with/without sci_ext: {median(with_cpu) / median(without_cpu):.3f}x"
          " (kernel CPU time, medians; goal <= 1.1x)")  # fmt: skip


if __name__ == "__main__":
    main()
