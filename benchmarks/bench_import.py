"""What `%load_ext sci_ext` adds to a kernel, against `import IPython` as the yardstick.

Method: every figure is measured in fresh processes (cold imports), REPEAT times, and
the median is printed.  Three figures:

* ``import IPython`` in a fresh interpreter (the peer);
* ``%load_ext sci_ext`` in a fresh IPython shell (import of sci_ext, magics, config load);
* the same in a real Jupyter kernel: round trip of a ``%load_ext sci_ext`` cell minus the
  round trip of an empty cell in the same fresh kernel.

Goal: the added cost of ``%load_ext`` is <= 50 ms.
Run: ``python benchmarks/bench_import.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

IMPORT_IPYTHON = "import time; t=time.perf_counter(); import IPython; print(time.perf_counter()-t)"
LOAD_EXT = (
    "from IPython.core.interactiveshell import InteractiveShell; import time;"
    "ip = InteractiveShell.instance(); t=time.perf_counter();"
    "ip.run_line_magic('load_ext', 'sci_ext'); print(time.perf_counter()-t)"
)
IMPORT_SCI_EXT = "import IPython, time; t=time.perf_counter(); import sci_ext; print(time.perf_counter()-t)"


def env() -> dict[str, str]:
    tmp = tempfile.mkdtemp(prefix="sci-bench-")
    out = {**os.environ, "PYTHONPATH": str(REPO)}
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        out[var] = str(Path(tmp) / var.lower())
    return out


def in_fresh_process(code: str, repeat: int) -> float:
    e = env()
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, check=True).stdout)
        for _ in range(repeat)
    ]
    return statistics.median(times)


def kernel_added_cost(repeat: int) -> float:
    from jupyter_client.manager import KernelManager

    def roundtrip(kc: object, code: str) -> float:
        t = time.perf_counter()
        reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)  # type: ignore[attr-defined]
        assert reply["content"]["status"] == "ok", reply["content"]
        return time.perf_counter() - t

    added = []
    for _ in range(repeat):
        km = KernelManager(kernel_name="python3")
        km.kernel_spec.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        km.start_kernel(env=env())
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            roundtrip(kc, "pass")  # warm the channels
            empty = roundtrip(kc, "pass")
            load = roundtrip(kc, "%load_ext sci_ext")
            added.append(load - empty)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return statistics.median(added)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 3 if args.quick else 9
    ipython = in_fresh_process(IMPORT_IPYTHON, repeat)
    sci = in_fresh_process(IMPORT_SCI_EXT, repeat)
    shell = in_fresh_process(LOAD_EXT, repeat)
    kernel = kernel_added_cost(1 if args.quick else 5)
    print(f"import IPython (peer)               : {ipython * 1000:7.1f} ms")
    print(f"import sci_ext (after IPython)      : {sci * 1000:7.1f} ms")
    print(f"%load_ext sci_ext in an IPython shell: {shell * 1000:7.1f} ms")
    print(f"%load_ext sci_ext added in a kernel : {kernel * 1000:7.1f} ms (goal <= 50 ms)")
    print(f"ratio load_ext/import IPython       : {shell / ipython:7.2f}x")
    print(f"ratio kernel added/import IPython   : {kernel / ipython:7.2f}x")


if __name__ == "__main__":
    main()
