"""What telemetry costs: per cell in a real kernel, and per call of ``performance_monitor``.

Method (everything measured in the same run):

* **Per cell.** One real kernel with ``%load_ext sci_ext``; a trivial cell (``pass``) is run
  CELLS times with telemetry's cell hooks on and CELLS times with them off (the
  ``pre_run_cell``/``post_run_cell`` pair disabled), interleaved in blocks of 50 so drift
  of a shared machine hits both sides; the medians of the round trips are compared.  A
  round trip is ~1 ms of ZMQ messaging with sub-millisecond noise, so the kernel also
  times the hook pair itself in-process (``timeit`` of ``pre`` + ``post`` with a real
  ``ExecutionResult``): that is the precise figure.  Goal: <= 0.2 ms per cell.
* **Per call.** ``@performance_monitor`` on a trivial function against the bare function and
  against ``prometheus_client``'s own ``Histogram.time()`` decorator (the peer: a duration
  histogram and nothing else); best of REPEAT ``timeit`` runs.  Goal: <= 1.5x the peer.

Run: ``python benchmarks/bench_telemetry.py [--quick]`` (with bytecode caches: unset
PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

from sizes import add_size_options, by_size

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HOOK_TIMING = """
import timeit
from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult
timer = __import__('sci_ext.kernel.state', fromlist=['KernelState']).KernelState.get(get_ipython()).timer
info = ExecutionInfo('pass', False, False, True, None)
result = ExecutionResult(info)
n = {n}
best = min(timeit.repeat(lambda: (timer.pre(info), timer.post(result)), number=n, repeat=5)) / n
print(best)
"""


ALL_HOOKS_TIMING = """
import time, timeit
from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult
ip = get_ipython()
def ours(event):
    return [cb for cb in ip.events.callbacks[event] if getattr(cb, '__module__', '').startswith('sci_ext.')]
pre, post = ours('pre_run_cell'), ours('post_run_cell')
info = ExecutionInfo('pass', True, False, True, None)
result = ExecutionResult(info)
def cell():
    for cb in pre:
        cb(info)
    for cb in post:
        cb(result)
def plain():
    ip.run_cell('pass', store_history=False, silent=True)  # silent: no hooks at all
n = {n}
timer = time.thread_time  # CPU time of this thread: what other processes cannot add to
hooks = min(timeit.Timer(cell, timer=timer).repeat(number=n, repeat=7)) / n
base = min(timeit.Timer(plain, timer=timer).repeat(number=n // 4 or 1, repeat=7)) / (n // 4 or 1)
print(hooks, base, len(pre), len(post))
"""


def env() -> dict[str, str]:
    tmp = tempfile.mkdtemp(prefix="sci-bench-tel-")
    out = {**os.environ, "PYTHONPATH": str(REPO)}
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        out[var] = str(Path(tmp) / var.lower())
    return out


def per_cell(cells: int) -> tuple[float, float, float, float, tuple[float, float]]:
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.kernel_spec.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    km.start_kernel(env=env())
    kc = km.client()
    kc.start_channels()

    def run(code: str) -> tuple[float, dict]:
        out: dict = {}

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                out["text"] = out.get("text", "") + msg["content"]["text"]

        t = time.perf_counter()
        reply = kc.execute_interactive(code, timeout=60, output_hook=hook)
        elapsed = time.perf_counter() - t
        assert reply["content"]["status"] == "ok", reply["content"]
        return elapsed, out

    try:
        kc.wait_for_ready(timeout=60)
        run("%load_ext sci_ext")
        run("from sci_ext.kernel.state import KernelState\n_t = KernelState.get(get_ipython()).timer")
        for _ in range(20):
            run("pass")  # warm up
        on: list[float] = []
        off: list[float] = []
        block = 50
        for _ in range(max(1, cells // block)):
            run("_t.enabled = True")
            on.extend(run("pass")[0] for _ in range(block))
            run("_t.enabled = False")
            off.extend(run("pass")[0] for _ in range(block))
        run("_t.enabled = True")
        hook = float(run(HOOK_TIMING.format(n=2000 if cells >= 1000 else 200))[1]["text"])
        all_hooks, plain, n_pre, n_post = run(ALL_HOOKS_TIMING.format(n=2000 if cells >= 1000 else 400))[1][
            "text"
        ].split()
        if int(n_pre) < 3 or int(n_post) < 3:  # telemetry, LLM notices, config check (+ redaction in a shell)
            raise SystemExit(f"expected sci_ext's cell hooks, found {n_pre} pre and {n_post} post")
        spread = (statistics.quantiles(on + off, n=4)[2] - statistics.quantiles(on + off, n=4)[0]) / 2
        return statistics.median(on), statistics.median(off), hook, spread, (float(all_hooks), float(plain))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def per_call(number: int, repeat: int) -> tuple[float, float, float]:
    os.environ.update({k: v for k, v in env().items() if k.startswith("XDG_")})
    from prometheus_client import CollectorRegistry, Histogram

    from sci_ext.core.telemetry import performance_monitor

    def bare(x: int) -> int:
        return x + 1

    monitored = performance_monitor(bare)
    peer = Histogram("bench_peer_seconds", "peer", registry=CollectorRegistry()).time()(bare)

    def best(fn: object) -> float:
        return min(timeit.repeat(lambda: fn(1), number=number, repeat=repeat)) / number  # type: ignore[operator]

    best(bare), best(monitored), best(peer)  # warm up
    return best(bare), best(monitored), best(peer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_options(parser, "fewer cells and calls")
    args = parser.parse_args()
    cells = by_size(args, smoke=5, quick=100, full=1000)
    number, repeat = by_size(args, smoke=(100, 1), quick=(20_000, 3), full=(200_000, 7))
    bare, monitored, peer = per_call(number, repeat)
    on, off, hooks, spread, (all_hooks, plain) = per_cell(cells)
    print(f"cells per side                           : {cells}")
    print(f"trivial cell round trip, telemetry off   : {off * 1000:8.3f} ms (median)")
    print(f"trivial cell round trip, telemetry on    : {on * 1000:8.3f} ms (median)")
    print(
        f"added per cell (round-trip medians)      : {(on - off) * 1000:8.3f} ms (noise: half the IQR is {spread * 1000:.3f} ms)"
    )
    print(f"added per cell (hooks timed in-kernel)   : {hooks * 1000:8.4f} ms (goal <= 0.2 ms)")
    print(f"all %load_ext cell hooks, in-kernel (CPU): {all_hooks * 1000:8.4f} ms (goal <= 0.2 ms)")
    print(f"a silent plain cell run_cell, in-kernel   : {plain * 1000:8.4f} ms")
    print(f"ratio load_ext cell hooks/plain cell     : {all_hooks / plain:8.3f}x")
    print(f"bare function call                       : {bare * 1e9:8.0f} ns")
    print(f"@performance_monitor call                : {monitored * 1e9:8.0f} ns (+{(monitored - bare) * 1e9:.0f} ns)")
    print(f"prometheus Histogram.time() call (peer)  : {peer * 1e9:8.0f} ns (+{(peer - bare) * 1e9:.0f} ns)")
    print(f"ratio performance_monitor/Histogram.time : {monitored / peer:8.2f}x (goal <= 1.5x)")
    print(f"ratio performance_monitor/bare           : {monitored / bare:8.2f}x")
    print(f"ratio cell on/off (round trip)           : {on / off:8.3f}x")


if __name__ == "__main__":
    main()
