"""What `%load_ext sci_ext` adds, against `import IPython` as the yardstick (goal: <= 0.25x).

Method: every figure is measured in fresh processes (cold imports, warm bytecode
caches: PYTHONDONTWRITEBYTECODE is removed for the children and one unmeasured run
writes the caches first), REPEAT times under ``nice``; the *best* run is kept, as
``timeit`` does, because on a shared machine noise only ever adds time.  Figures:

* ``import IPython`` in a fresh interpreter (the peer);
* ``%load_ext sci_ext`` in a fresh IPython shell (``run_line_magic``, as a cell runs it);
* the same in a real Jupyter kernel: round trip of a ``%load_ext sci_ext`` cell minus the
  round trip of an empty cell in the same fresh kernel;
* with ``--instructions`` (needs ``valgrind``): instructions executed, counted by
  callgrind, of ``import IPython`` and of ``%load_ext sci_ext`` (each as the difference
  of two programs that differ only by it) - a figure no other process on the machine
  can disturb.

Run: ``python benchmarks/bench_import.py [--quick] [--instructions]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sizes import add_size_options, by_size

REPO = Path(__file__).resolve().parents[1]

IMPORT_IPYTHON = "import time; t=time.perf_counter(); import IPython; print(time.perf_counter()-t)"
LOAD_EXT = (
    "from IPython.core.interactiveshell import InteractiveShell; import time;"
    "ip = InteractiveShell.instance(); t=time.perf_counter();"
    "ip.run_line_magic('load_ext', 'sci_ext'); print(time.perf_counter()-t)"
)
IMPORT_SCI_EXT = "import IPython, time; t=time.perf_counter(); import sci_ext; print(time.perf_counter()-t)"

# Pairs of programs for instruction counts: (without, with) the measured step.
COUNT_IPYTHON = ("pass", "import IPython")
COUNT_LOAD_EXT = (
    "from IPython.core.interactiveshell import InteractiveShell; ip = InteractiveShell.instance()",
    "from IPython.core.interactiveshell import InteractiveShell; ip = InteractiveShell.instance();"
    "ip.run_line_magic('load_ext', 'sci_ext')",
)


def env() -> dict[str, str]:
    """The children's environment: this checkout, bytecode caches on, an empty sci_ext home."""
    tmp = tempfile.mkdtemp(prefix="sci-bench-")
    out = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "0"}
    out.pop("PYTHONDONTWRITEBYTECODE", None)  # users have bytecode caches
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        out[var] = str(Path(tmp) / var.lower())
    return out


def _nice() -> list[str]:
    return ["nice", "-n", "5"] if shutil.which("nice") else []


def in_fresh_process(code: str, repeat: int) -> float:
    """Best seconds of ``code``'s own timing over ``repeat`` fresh interpreters (after one warm-up)."""
    e = env()
    run = [*_nice(), sys.executable, "-c", code]
    subprocess.run(run, capture_output=True, text=True, env=e, check=True)  # writes the bytecode caches
    return min(
        float(subprocess.run(run, capture_output=True, text=True, env=e, check=True).stdout) for _ in range(repeat)
    )


def instructions(code: str) -> int:
    """Instructions ``python -c code`` executes, counted by callgrind."""
    e = env()
    subprocess.run([sys.executable, "-c", code], capture_output=True, env=e, check=True)  # caches
    res = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=e,
        check=True,
    )
    for line in res.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip().replace(",", ""))
    raise RuntimeError(f"no instruction count in callgrind's output: {res.stderr[-500:]}")


def step_instructions(pair: tuple[str, str]) -> int:
    """Instructions of the step that the second program of ``pair`` adds to the first."""
    return instructions(pair[1]) - instructions(pair[0])


def kernel_added_cost(repeat: int) -> float:
    """Best (load cell - empty cell) round trip over ``repeat`` fresh kernels."""
    from jupyter_client.manager import KernelManager

    def roundtrip(kc: object, code: str) -> float:
        t = time.perf_counter()
        reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)  # type: ignore[attr-defined]
        assert reply["content"]["status"] == "ok", reply["content"]
        return time.perf_counter() - t

    added = []
    for _ in range(repeat):
        km = KernelManager(kernel_name="python3")
        km.kernel_spec.argv = [*_nice(), sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        km.start_kernel(env=env())
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            roundtrip(kc, "pass")  # warm the channels
            empty = min(roundtrip(kc, "pass") for _ in range(3))
            load = roundtrip(kc, "%load_ext sci_ext")
            added.append(load - empty)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return min(added)


def main() -> None:
    """Measure and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_size_options(parser, "fewer repetitions")
    parser.add_argument("--instructions", action="store_true", help="also count instructions with valgrind")
    args = parser.parse_args()
    repeat = by_size(args, smoke=1, quick=5, full=15)
    ipython = in_fresh_process(IMPORT_IPYTHON, repeat)
    sci = in_fresh_process(IMPORT_SCI_EXT, repeat)
    shell = in_fresh_process(LOAD_EXT, repeat)
    kernel = kernel_added_cost(by_size(args, smoke=1, quick=2, full=7))
    print(f"import IPython (peer)               : {ipython * 1000:7.1f} ms (best of {repeat})")
    print(f"import sci_ext (after IPython)      : {sci * 1000:7.1f} ms")
    print(f"%load_ext sci_ext in an IPython shell: {shell * 1000:7.1f} ms")
    print(f"%load_ext sci_ext added in a kernel : {kernel * 1000:7.1f} ms")
    print(f"ratio load_ext/import IPython       : {shell / ipython:7.2f}x (goal <= 0.25x)")
    print(f"ratio kernel added/import IPython   : {kernel / ipython:7.2f}x (goal <= 0.25x)")
    if args.instructions:
        if shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
        peer, ours = step_instructions(COUNT_IPYTHON), step_instructions(COUNT_LOAD_EXT)
        print(f"import IPython, instructions        : {peer / 1e6:7.1f} M")
        print(f"%load_ext sci_ext, instructions     : {ours / 1e6:7.1f} M")
        print(f"ratio load_ext/import IPython (instructions): {ours / peer:7.3f}x (goal <= 0.25x)")


if __name__ == "__main__":
    main()
