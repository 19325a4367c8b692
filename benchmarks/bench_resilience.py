"""Overhead of sci_ext's resilience layer against its peers, measured in the same run.

    python benchmarks/bench_resilience.py [--quick] [--no-kernel]

1. Success path, per call: a plain call, ``@retry_with_backoff`` and a bare tenacity
   ``@retry`` with equivalent settings (3 attempts, exponential jitter, transient
   errors only, reraise).  Overhead = time - plain call; the ratio line compares the
   two overheads (goal: <= 0.25).
2. Retry path, per call: a function that fails once then succeeds, waits off
   (sci_ext's testing mode vs tenacity's ``wait_none``).
3. A closed circuit breaker vs pybreaker (the ``bench`` extra; an error when
   absent): sci_ext with its in-process store, with the default machine-wide disk
   store, and with the disk store reading SQLite on every call (no generation
   file: what the memory-mapped counters save).  Goal: disk within 2x of memory.
4. A ``%%guarded`` cell vs a plain cell in a real kernel, timed inside the kernel
   with ``run_cell`` in CPU time (goal: <= 1.5x), twice: as the kernel runs a notebook
   cell (``store_history=True``: history, ``In``/``Out``, sci_ext's cell hooks; each run
   is a new cell number, so nothing compiled is reused) and silent without history
   (the same cell number each time: the magic reuses its compiled cell; the hooks do
   not run).  And vs a no-op cell magic that only runs its cell: IPython's own dispatch
   of a cell magic (``run_cell_magic``, the longer line to parse and compile).

Method: ``timeit`` with the best of 5 repeats; every figure comes from this run
on this machine, so only the ratios are comparable across machines.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sizes import add_size_options, by_size, size_name

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def per_call(fn: Callable[[], Any], number: int, repeat: int = 5) -> float:
    """Best seconds per call of ``fn`` over ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def us(seconds: float) -> str:
    return f"{seconds * 1e6:8.3f} us"


def ratio(label: str, ours: float, peer: float, goal: str = "") -> None:
    value = ours / peer if peer > 0 else float("inf")
    print(f"ratio {label}: {value:.3f}{'  (goal ' + goal + ')' if goal else ''}")


def bench_success_path(number: int) -> None:
    import tenacity

    from sci_ext.core.resilience import is_transient, retry_with_backoff

    def work(x: int = 1) -> int:
        return x + 1

    ours = retry_with_backoff(max_attempts=3)(work)
    peer = tenacity.retry(
        stop=tenacity.stop_after_attempt(3) | tenacity.stop_after_delay(300),
        wait=tenacity.wait_exponential_jitter(multiplier=0.5, max=30, jitter=1),
        retry=tenacity.retry_if_exception(is_transient),
        reraise=True,
    )(work)
    plain = per_call(work, number)
    t_ours = per_call(ours, number)
    t_peer = per_call(peer, number // 10 or 1)
    print("\n[1] success path, per call")
    print(f"  plain call            {us(plain)}")
    print(f"  retry_with_backoff    {us(t_ours)}  overhead {us(t_ours - plain)}")
    print(f"  tenacity @retry       {us(t_peer)}  overhead {us(t_peer - plain)}")
    ratio("success-path overhead retry_with_backoff/tenacity", max(t_ours - plain, 0.0), t_peer - plain, "<= 0.25")


def bench_retry_path(number: int) -> None:
    import tenacity

    from sci_ext.core.resilience import is_transient, retry_with_backoff, testing

    class FailOnce:
        def __init__(self) -> None:
            self.fail = True

        def __call__(self) -> int:
            self.fail = not self.fail
            if not self.fail:
                raise ConnectionResetError("blip")
            return 1

    ours = retry_with_backoff(max_attempts=3)(FailOnce())
    peer = tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_none(),
        retry=tenacity.retry_if_exception(is_transient),
        reraise=True,
    )(FailOnce())
    with testing(attempts=None):
        t_ours = per_call(ours, number)
    t_peer = per_call(peer, number)
    print("\n[2] retry path (fail once, then succeed; waits off), per call")
    print(f"  retry_with_backoff    {us(t_ours)}")
    print(f"  tenacity @retry       {us(t_peer)}")
    ratio("retry-path time retry_with_backoff/tenacity", t_ours, t_peer)


def bench_breaker(number: int) -> None:
    from sci_ext.core.config import get_config
    from sci_ext.core.resilience import CircuitBreaker, DiskStore

    def work() -> int:
        return 1

    plain = per_call(work, number)
    memory = CircuitBreaker("bench-memory", fail_max=5, store="memory")
    disk = CircuitBreaker("bench-disk", fail_max=5, store="disk")
    # The same database read on every call, as before the generation file: the cost it saves.
    unmapped_store = DiskStore(os.path.join(get_config().core.state_dir, "breakers"), generations=False)
    unmapped = CircuitBreaker("bench-disk-unmapped", fail_max=5, store=unmapped_store)
    t_memory = per_call(lambda: memory.call(work), number)
    t_disk = per_call(lambda: disk.call(work), number)
    t_unmapped = per_call(lambda: unmapped.call(work), number // 10 or 1)
    unmapped_store.close()
    print("\n[3] closed circuit breaker, per call")
    print(f"  plain call                  {us(plain)}")
    print(f"  sci_ext (memory store)      {us(t_memory)}  overhead {us(t_memory - plain)}")
    print(f"  sci_ext (disk, all kernels) {us(t_disk)}  overhead {us(t_disk - plain)}")
    print(f"  sci_ext (disk, no gen file) {us(t_unmapped)}  overhead {us(t_unmapped - plain)}")
    ratio("closed-breaker overhead sci_ext(disk)/sci_ext(memory)", t_disk - plain, t_memory - plain, "<= 2")
    try:
        import pybreaker
    except ImportError:
        # A missing peer is an error: its ratios would silently vanish from bench_regress.py.
        raise SystemExit("pybreaker is not installed: pip install 'sci_ext[bench]'") from None
    peer = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    t_peer = per_call(lambda: peer.call(work), number)
    print(f"  pybreaker (memory)          {us(t_peer)}  overhead {us(t_peer - plain)}")
    ratio("closed-breaker overhead sci_ext(memory)/pybreaker", t_memory - plain, t_peer - plain)
    ratio("closed-breaker overhead sci_ext(disk)/pybreaker", t_disk - plain, t_peer - plain)


KERNEL_CODE = """
import gc, time, json
ip = get_ipython()
_compiled = {{}}
def _floor(line, cell):
    # The least a cell magic can do: run its cell, compiled once (IPython's own cost of a cell magic).
    code = _compiled.get(cell)
    if code is None:
        code = _compiled[cell] = compile(cell, "<floor>", "exec")
    exec(code, ip.user_global_ns, ip.user_ns)
ip.register_magic_function(_floor, "cell", "sci_bench_floor")
CELLS = {{"plain": "x = 1", "guarded": "%%guarded\\nx = 1", "floor": "%%sci_bench_floor\\nx = 1"}}
def block(cell, n, kwargs):
    gc.collect()  # each block pays for the garbage of its own cells, not for the others'
    start = time.thread_time()  # CPU time of this thread: other processes cannot add to it
    for _ in range(n):
        ip.run_cell(cell, **kwargs)
    return (time.thread_time() - start) / n
figures = {{}}
for mode in ("silent", "notebook"):
    # notebook: as the kernel runs a cell (history, In/Out, the pre/post_run_cell hooks);
    # silent: no history, no hooks, the same cell number (the same compiled cell) every time.
    kwargs = {{"store_history": True}} if mode == "notebook" else {{"store_history": False, "silent": True}}
    for cell in CELLS.values():
        block(cell, 20, kwargs)  # warm up
    runs = {{key: [] for key in CELLS}}
    for _ in range(15):  # interleaved blocks: a slow spell of the machine hits all three alike
        for key, cell in CELLS.items():
            runs[key].append(block(cell, {n}, kwargs))
    for key in CELLS:
        figures[mode + "_" + key] = min(runs[key])
print(json.dumps(figures))
"""


def bench_kernel(cells: int) -> None:
    import json

    from jupyter_client.manager import KernelManager

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # with bytecode caches, as users have them
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as home:
        for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
            env[var] = os.path.join(home, var.lower())
        km = KernelManager(kernel_name="python3")
        km.kernel_spec.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        km.start_kernel(env=env, cwd=home)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            outputs: list[str] = []

            def collect(msg: dict[str, Any]) -> None:
                if msg["msg_type"] == "stream":
                    outputs.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    outputs.append("\n".join(msg["content"]["traceback"]))

            kc.execute_interactive("%load_ext sci_ext", timeout=60)
            kc.execute_interactive(KERNEL_CODE.format(n=cells), timeout=600, output_hook=collect)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    text = "".join(outputs)
    figures = json.loads(text.strip().splitlines()[-1])
    print(
        "\n[4] a cell in a real kernel (run_cell, CPU time inside the kernel, best of 15 interleaved blocks), per cell"
    )
    for mode, what in (
        ("notebook", "as the kernel runs a notebook cell: history, In/Out, sci_ext's cell hooks"),
        ("silent", "silent, no history: the same compiled cell each time"),
    ):
        plain, guarded, floor = (figures[f"{mode}_{key}"] for key in ("plain", "guarded", "floor"))
        print(f"  {mode}: {what}")
        print(f"    plain cell            {us(plain)}")
        print(f"    %%guarded cell        {us(guarded)}  overhead {us(guarded - plain)}")
        print(
            f"    no-op cell magic      {us(floor)}  overhead {us(floor - plain)}  (IPython's dispatch of a cell magic)"
        )
    plain, guarded, floor = (figures[f"notebook_{key}"] for key in ("plain", "guarded", "floor"))
    ratio("%%guarded cell / plain cell, notebook run", guarded, plain, "<= 1.5")
    plain, guarded, floor = (figures[f"silent_{key}"] for key in ("plain", "guarded", "floor"))
    ratio("%%guarded cell / plain cell", guarded, plain, "<= 1.5")
    ratio("%%guarded cell / no-op cell magic", guarded, floor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_options(parser)
    parser.add_argument("--no-kernel", action="store_true", help="skip the kernel benchmark")
    args = parser.parse_args(argv)
    number = by_size(args, smoke=20, quick=2_000, full=200_000)
    with tempfile.TemporaryDirectory() as state:
        # The disk breaker writes under core.state_dir: keep the benchmark's out of the user's.
        os.environ["SCI_EXT_CORE__STATE_DIR"] = state
        print(f"sci_ext resilience benchmark ({size_name(args)}), Python {sys.version.split()[0]}")
        bench_success_path(number)
        bench_retry_path(number // 20 or 1)
        bench_breaker(number)
        if not args.no_kernel:
            bench_kernel(by_size(args, smoke=5, quick=50, full=2_000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
