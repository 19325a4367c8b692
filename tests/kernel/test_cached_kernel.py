"""``%%cached`` in real kernels: restart-proof, never stale, safe when things go wrong."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.module_kernel]

STATUS = "from sci_ext.kernel.cellcache.session import SESSION as _S\n_S.last.status"


def status(kernel) -> str:
    return kernel.run(STATUS).check().result["text/plain"].strip("'")


EXPENSIVE = """%%cached demo
import numpy as np
print("computing with", n)
from IPython.display import HTML, display
display(HTML("<b>table</b>"))
data = np.arange(n * 1000, dtype=np.float64)
total = float(data.sum())
total
"""


def restart(session) -> None:
    """Restart the kernel process, as the notebook's restart button does."""
    before = session.run("import os; os.getpid()").check().result["text/plain"]
    session.km.restart_kernel(now=False)
    session.kc.wait_for_ready(timeout=60)
    session.run("%load_ext sci_ext").check()
    assert session.run("import os; os.getpid()").check().result["text/plain"] != before


def test_restart_proof_hit_restores_values_and_replays_outputs(kernel):
    first = kernel
    first.run("n = 300").check()
    miss = first.run(EXPENSIVE).check()
    assert status(first) == "miss"
    assert "computing with 300" in miss.stdout and miss.displays[0]["text/html"] == "<b>table</b>"

    restart(kernel)
    second = kernel
    assert second.run("'data' in dir()").check().result["text/plain"] == "False"
    second.run("n = 300").check()
    hit = second.run(EXPENSIVE).check()
    assert status(second) == "hit"
    # Outputs replayed in order, then the notice; the cell's value is the result again.
    assert hit.outputs[0]["text"].startswith("computing with 300")
    assert hit.outputs[1]["data"]["text/html"] == "<b>table</b>"
    assert "restored from disk" in hit.stdout and "data" in hit.stdout
    assert hit.result["text/plain"] == str(float(sum(range(300_000))))
    check = second.run(
        "import numpy\n"
        "assert isinstance(np, type(numpy)) and np is numpy\n"  # the import restored as an import
        "assert data.flags.writeable and not data.flags.owndata\n"  # memory-mapped, copy-on-write
        "data[0] = 42.0\n"
        "(float(data.sum()), total)"
    ).check()
    assert check.result["text/plain"] == f"({sum(range(300_000)) + 42.0}, {float(sum(range(300_000)))})"


def test_input_value_change_is_a_miss(kernel):
    cell = "%%cached\nprint('x is', x)\ny = x * 2"
    kernel.run("x = 1").check()
    kernel.run(cell).check()
    kernel.run(cell).check()
    assert status(kernel) == "hit"
    kernel.run("x = 2").check()
    res = kernel.run(cell).check()
    assert status(kernel) == "miss" and "x is 2" in res.stdout
    assert kernel.run("y").check().result["text/plain"] == "4"


def test_editing_a_helper_function_is_a_miss(kernel):
    kernel.run("SCALE = 10\ndef scale(v):\n    return v * SCALE\ndef helper(v):\n    return scale(v) + 1").check()
    cell = "%%cached\nout = helper(2)"
    kernel.run(cell).check()
    kernel.run(cell).check()
    assert status(kernel) == "hit"
    # Edit a helper two calls away: still a miss.
    kernel.run("def scale(v):\n    return v * SCALE * 2").check()
    kernel.run(cell).check()
    assert status(kernel) == "miss"
    assert kernel.run("out").check().result["text/plain"] == "41"
    # A global the helpers read changes: a miss too.
    kernel.run("SCALE = 1").check()
    kernel.run(cell).check()
    assert status(kernel) == "miss"
    assert kernel.run("out").check().result["text/plain"] == "5"


def test_editing_a_watched_file_is_a_miss(kernel, sci_env):
    data = sci_env["project"] / "data.csv"
    data.write_text("1,2,3\n")
    cell = "%%cached --files *.csv\nrows = open('data.csv').read().split(',')"
    kernel.run(cell).check()
    kernel.run(cell).check()
    assert status(kernel) == "hit"
    data.write_text("1,2,3,4\n")
    kernel.run(cell).check()
    assert status(kernel) == "miss"
    assert kernel.run("len(rows)").check().result["text/plain"] == "4"


def test_in_place_change_of_an_input_is_restored_on_a_hit(kernel):
    cell = "%%cached\nitems.append(len(items))\ncount = len(items)"
    kernel.run("items = [10]").check()
    kernel.run(cell).check()
    assert kernel.run("items").check().result["text/plain"] == "[10, 1]"
    kernel.run("items = [10]").check()
    kernel.run(cell).check()
    assert status(kernel) == "hit"
    assert kernel.run("items, count").check().result["text/plain"] == "([10, 1], 2)"


def test_a_cell_that_raises_stores_nothing_and_keeps_its_bindings_like_a_plain_cell(kernel):
    kernel.run("keep = 'old'").check()
    res = kernel.run("%%cached\nkeep = 'new'\nfresh = 1\nraise ValueError('boom')")
    assert res.error is not None and res.error["ename"] == "ValueError"
    state = kernel.run("keep, 'fresh' in dir()").check()
    # Plain Python keeps what a failing cell bound (issue 25: the rollback made the next cell fail).
    assert state.result["text/plain"] == "('new', True)"
    stats = kernel.run("from sci_ext.core.cache.admin import stats\nstats()['entries']").check()
    assert stats.result["text/plain"] == "0"


def test_unpicklable_variable_warns_by_name_and_stores_nothing(kernel):
    res = kernel.run("%%cached\nimport threading\nlock_obj = threading.Lock()\nvalue = 5").check()
    assert "lock_obj" in res.stderr and "not cached" in res.stderr
    assert kernel.run("value").check().result["text/plain"] == "5"  # the cell still ran
    listing = kernel.run("%sci_cache list").check().text
    assert "0 entries" in listing


def test_truncated_entry_is_a_miss_with_a_warning(kernel, sci_env):
    cell = "%%cached big\nimport numpy as np\nbig = np.ones(400_000)\ns = float(big.sum())"
    kernel.run(cell).check()
    cache_dir = sci_env["XDG_CACHE_HOME"] / "sci_ext" / "cells"
    files = sorted((p for p in cache_dir.rglob("*.val")), key=lambda p: p.stat().st_size)
    assert files, "the entry should be a file"
    with open(files[-1], "r+b") as handle:
        handle.truncate(files[-1].stat().st_size // 2)
    res = kernel.run(cell).check()
    assert "unreadable" in res.stderr and "truncated" in res.stderr
    assert status(kernel) == "miss"
    assert kernel.run("s").check().result["text/plain"] == "400000.0"
    kernel.run(cell).check()
    assert status(kernel) == "hit"  # the rewritten entry is good again


def test_two_kernels_running_the_same_cell_at_once(kernel_factory):
    kernels = [kernel_factory(), kernel_factory()]
    cell = "%%cached shared\nimport time\ntime.sleep(0.5)\nvalues = list(range(1000))\nlast = values[-1]"
    results = [None, None]

    def run(i):
        results[i] = kernels[i].run(cell)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, res in zip(kernels, results):
        res.check()
        assert k.run("last, len(values)").check().result["text/plain"] == "(999, 1000)"
    statuses = sorted(status(k) for k in kernels)
    assert statuses == ["hit", "miss"]  # one computed, the other waited and restored
    assert "1 entries" in kernels[0].run("%sci_cache list").check().text


def test_sigkill_while_writing_a_large_entry_never_gives_a_corrupt_hit(kernel_factory, sci_env):
    victim = kernel_factory()
    pid = int(victim.run("import os; os.getpid()").check().result["text/plain"])
    cell = "%%cached huge\nimport numpy as np\nhuge = np.full(40_000_000, 3.0)\nmark = 7"
    victim.kc.execute(cell)
    cache_dir = sci_env["XDG_CACHE_HOME"] / "sci_ext" / "cells"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in cache_dir.rglob("*.val")) if cache_dir.exists() else False:
            break
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    other = kernel_factory()
    res = other.run(cell + "\nassert huge.shape == (40_000_000,) and float(huge[-1]) == 3.0 and mark == 7")
    res.check()
    assert status(other) in ("hit", "miss")
    assert other.run("float(huge.sum())").check().result["text/plain"] == "120000000.0"


def test_ttl_expiry(kernel):
    cell = "%%cached --ttl 0.8\nt = 1"
    kernel.run(cell).check()
    kernel.run(cell).check()
    assert status(kernel) == "hit"
    time.sleep(0.9)
    kernel.run(cell).check()
    assert status(kernel) == "miss"


def test_size_limit_evicts_least_recently_used(kernel):
    kernel.run("%sci_config cache.size_limit_bytes=1048576").check()
    cells = [f"%%cached part{i}\nblob{i} = bytes({i}) * 450_000" for i in range(3)]
    for cell in cells:
        kernel.run(cell).check()
    kernel.run(cells[0]).check()
    assert status(kernel) == "miss"  # evicted to stay under the limit
    listing = kernel.run("%sci_cache stats").check().text
    size = int(listing.split("bytes")[1].split()[0])
    assert size <= 1048576 + 600_000  # diskcache culls on the next write


def test_rich_outputs_are_replayed_on_a_hit(kernel):
    cell = (
        "%%cached rich\n"
        "import base64\n"
        "from IPython.display import Image, display\n"
        "png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==')\n"
        "display(Image(data=png))\n"
        # What plotly's fig.show() publishes in a notebook (plotly itself is slow to import).
        "fig = {'data': [{'type': 'bar', 'y': [2, 3, 1]}], 'layout': {}}\n"
        "display({'application/vnd.plotly.v1+json': fig, 'text/plain': 'Figure'}, raw=True)\n"
        "print('after the figure')"
    )
    miss = kernel.run(cell).check()
    hit = kernel.run(cell).check()
    assert status(kernel) == "hit"
    kinds = lambda res: [sorted(o["data"]) if "data" in o else o["type"] for o in res.outputs]  # noqa: E731
    assert kinds(hit)[: len(kinds(miss))] == kinds(miss)
    assert "image/png" in hit.outputs[0]["data"]
    plotly = [o for o in hit.outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert plotly and plotly[0]["data"]["application/vnd.plotly.v1+json"]["data"][0]["y"] == [2, 3, 1]


def test_outputs_of_a_miss_appear_while_the_cell_runs(kernel):
    """Unlike ipycache, the first print reaches the frontend before the cell ends."""
    msg_id = kernel.kc.execute("%%cached live\nimport time\nprint('started', flush=True)\ntime.sleep(0.8)\ndone = 1")
    stream_at = idle_at = None
    while idle_at is None:
        msg = kernel.kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and "started" in msg["content"]["text"]:
            stream_at = msg["header"]["date"]
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            idle_at = msg["header"]["date"]
    kernel.kc.get_shell_msg(timeout=30)
    assert stream_at is not None
    # The kernel stamped the output well before it went idle: it was sent live, not at the end.
    assert (idle_at - stream_at).total_seconds() > 0.4
