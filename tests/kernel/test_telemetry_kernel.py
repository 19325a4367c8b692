"""Telemetry in real kernels: correlation ids per cell, the JSON log, cell metrics, errors, %sci_health."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.module_kernel]


def log_lines(state_home: Path) -> list[dict]:
    path = state_home / "sci_ext" / "logs" / "sci_ext.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_each_cell_gets_its_own_correlation_id_and_execution_count(kernel, sci_env):
    a = kernel.run("from sci_ext.core import context\nc = context.current(); (c.correlation_id, c.execution_count)")
    b = kernel.run("c = context.current(); (c.correlation_id, c.execution_count, c.kernel_id)").check()
    cid_a, count_a = eval(a.check().result["text/plain"])
    cid_b, count_b, kernel_id = eval(b.result["text/plain"])
    assert len(cid_a) == 32 and len(cid_b) == 32 and cid_a != cid_b
    assert count_b == count_a + 1 == 3  # %load_ext was In[1]
    assert kernel_id  # the connection file's id
    # Outside a cell (after post_run_cell) the id is reset: a thread not started through sci_ext sees none.
    res = kernel.run(
        "import threading\nseen = []\nt = threading.Thread(target=lambda: seen.append(context.current().correlation_id))\n"
        "t.start(); t.join(); seen"
    ).check()
    assert res.result["text/plain"] == "[None]"


def test_log_lines_of_a_cell_its_threads_and_tasks_carry_its_id(kernel, sci_env):
    code = (
        "import asyncio, threading\n"
        "from sci_ext.core import get_logger, context\n"
        "log = get_logger('nb')\n"
        "log.info('main line', extra={'step': 1})\n"
        "t = threading.Thread(target=context.wrap(lambda: log.info('thread line')))\n"
        "t.start(); t.join()\n"
        "async def task():\n"
        "    log.info('task line')\n"
        "await asyncio.gather(asyncio.create_task(task()))\n"
        "context.current().correlation_id"
    )
    res = kernel.run(code).check()
    cid = res.result["text/plain"].strip("'")
    lines = {rec["msg"]: rec for rec in log_lines(sci_env["XDG_STATE_HOME"]) if rec["logger"] == "sci_ext.nb"}
    assert set(lines) == {"main line", "thread line", "task line"}
    for rec in lines.values():
        assert rec["correlation_id"] == cid
        assert rec["execution_count"] == 2
        assert rec["kernel_id"]
        assert rec["level"] == "INFO" and rec["ts"].endswith("Z")
    assert lines["main line"]["step"] == 1


def test_guarded_retries_log_with_the_cells_id_and_count_metrics(kernel, sci_env):
    kernel.run("%sci_config retry.jitter=0 retry.initial_wait=0.01").check()
    code = (
        "%%guarded flaky --retries 3\n"
        "calls = globals().setdefault('calls', [])\n"
        "calls.append(1)\n"
        "if len(calls) < 3:\n"
        "    raise ConnectionError('blip')\n"
        "from sci_ext.core import context; cid = context.current().correlation_id"
    )
    kernel.run(code).check()
    cid = kernel.run("cid").check().result["text/plain"].strip("'")
    retries = [r for r in log_lines(sci_env["XDG_STATE_HOME"]) if r["logger"] == "sci_ext.retry"]
    assert len(retries) == 2
    assert {r["correlation_id"] for r in retries} == {cid}
    assert retries[0]["error_type"] == "ConnectionError" and retries[0]["retry_name"] == "%%guarded flaky"
    text = kernel.run("from sci_ext.core.telemetry import generate_metrics_text\nprint(generate_metrics_text())").stdout
    assert 'sci_retry_attempts_total{error_type="ConnectionError",name="%%guarded flaky"} 2.0' in text


def test_every_cell_is_timed_and_a_failed_cell_is_recorded_once(kernel, sci_env):
    before = kernel.run("from sci_ext.core.telemetry import get_metrics\nm = get_metrics()\n1").check()
    assert before.ok
    count = "m.cell_duration._sum.get(), [s.value for s in m.cell_duration.collect()[0].samples if s.name.endswith('_count')][0]"
    n0 = eval(kernel.run(count).check().result["text/plain"])[1]
    kernel.run("x = 1").check()
    kernel.run("import time; time.sleep(0.05)").check()
    n1 = eval(kernel.run(count).check().result["text/plain"])[1]
    assert n1 == n0 + 3  # two cells and the first count cell itself
    # A %%guarded cell that gives up: one error record (not one from %%guarded and one from the cell)
    kernel.run("%sci_config retry.jitter=0 retry.initial_wait=0.01").check()
    failed = kernel.run("%%guarded doomed --retries 1\nraise ConnectionError('down')")
    assert failed.error is not None
    plain = kernel.run("1/0")
    assert plain.error["ename"] == "ZeroDivisionError"
    errors_file = sci_env["XDG_STATE_HOME"] / "sci_ext" / "telemetry" / "errors.jsonl"
    records = [json.loads(line) for line in errors_file.read_text().splitlines()]
    assert [r["where"] for r in records] == ["%%guarded doomed", f"cell [{records[1]['execution_count']}]"]
    assert records[0]["category"] == "transient" and records[1]["error_type"] == "ZeroDivisionError"
    assert all(len(r["correlation_id"]) == 32 for r in records)
    assert records[0]["correlation_id"] != records[1]["correlation_id"]
    assert stat.S_IMODE(errors_file.stat().st_mode) == 0o600
    res = kernel.run("m.cell_errors._value.get()").check()
    assert float(res.result["text/plain"]) == 2.0


def test_secret_values_never_reach_the_log_file(kernel, sci_env):
    code = (
        "from sci_ext.core.security import get_redactor\n"
        "from sci_ext.core import get_logger\n"
        "get_redactor().add('API_KEY', 'sk-live-0123456789abcdef')\n"
        "log = get_logger('nb')\n"
        "log.warning('calling with %s', 'sk-live-0123456789abcdef', extra={'token': 'Bearer sk-live-0123456789abcdef'})\n"
        "try:\n"
        "    raise ValueError('bad key sk-live-0123456789abcdef')\n"
        "except ValueError:\n"
        "    log.exception('failed')\n"
    )
    kernel.run(code).check()
    kernel.run("raise RuntimeError('cell saw sk-live-0123456789abcdef')")
    text = (sci_env["XDG_STATE_HOME"] / "sci_ext" / "logs" / "sci_ext.jsonl").read_text()
    errors = (sci_env["XDG_STATE_HOME"] / "sci_ext" / "telemetry" / "errors.jsonl").read_text()
    assert "sk-live-0123456789abcdef" not in text + errors
    assert text.count("[REDACTED:API_KEY]") >= 4  # message, extra, traceback, cell error line
    assert "[REDACTED:API_KEY]" in errors


def test_unwritable_log_dir_warns_once_and_the_kernel_keeps_working(kernel_factory, sci_env, tmp_path):
    if os.geteuid() == 0:
        # root writes anywhere: make the log directory a file instead
        state = tmp_path / "state-file"
        state.mkdir()
        (state / "logs").write_text("not a directory")
    else:
        state = tmp_path / "state-ro"
        state.mkdir()
        (state / "logs").mkdir(mode=0o500)
    kernel = kernel_factory(env={"SCI_EXT_CORE__STATE_DIR": str(state)}, load_extension=False)
    first = kernel.run("%load_ext sci_ext").check()
    # The log is configured when the first cell is recorded (after %load_ext): warned there, once.
    res = kernel.run("from sci_ext.core import get_logger\nget_logger('nb').warning('lost?')\nx = 41 + 1\nx").check()
    assert res.result["text/plain"] == "42"
    assert (first.stderr + res.stderr).count("cannot write the log") == 1, (first.stderr, res.stderr)
    assert "cannot write the log" not in kernel.run("x").check().stderr
    assert kernel.run("1/0").error["ename"] == "ZeroDivisionError"
    assert kernel.run("x").check().result["text/plain"] == "42"


def test_sci_health_shows_a_table(kernel, sci_env):
    res = kernel.run("%sci_health").check()
    html = res.result["text/html"]
    assert "<table>" in html and "cache_dir" in html and "vault" in html
    assert res.result["text/plain"].startswith("sci_ext health: ")
    res = kernel.run(
        "from sci_ext.core import health_check\n"
        "@health_check('boom')\n"
        "def boom():\n"
        "    raise OSError('disk on fire')\n"
        "%sci_health boom --json"
    ).check()
    report = json.loads(res.stdout)
    assert report["status"] == "failing"
    assert report["checks"][0]["detail"] == "OSError: disk on fire"
    bad = kernel.run("%sci_health nosuch")
    assert bad.error is not None and "unknown health check(s): nosuch" in bad.error["evalue"]
    bad = kernel.run("%sci_health --timeout 0")
    assert bad.error is not None and "--timeout must be > 0 seconds" in bad.error["evalue"]
    bad = kernel.run("%sci_health --nope")
    assert bad.error is not None and bad.error["ename"] == "UsageError"


def test_metrics_of_a_kernel_in_multiprocess_mode_reach_another_process(kernel_factory, sci_env, tmp_path):
    from sci_ext.core.telemetry.metrics import aggregate_metrics_text
    from sci_ext.core.telemetry.status import collect_status

    mp_dir = sci_env["XDG_STATE_HOME"] / "sci_ext" / "prometheus"
    mp_dir.mkdir(parents=True)
    # The status adds this (pytest) process's own registry, where earlier in-process tests may
    # have recorded cells: compare with what it says before the kernel runs.
    before = collect_status(run_checks=False)["cells"]
    kernel = kernel_factory(env={"PROMETHEUS_MULTIPROC_DIR": str(mp_dir)})
    for _ in range(3):
        kernel.run("pass").check()
    kernel.run("1/0")
    assert any(p.name.startswith("histogram_") for p in mp_dir.iterdir())
    text = aggregate_metrics_text(mp_dir)
    count = [line for line in text.splitlines() if line.startswith("sci_cell_duration_seconds_count")]
    assert count and float(count[0].split()[-1]) >= 4
    assert 'sci_errors_total{category="unknown"} 1.0' in text
    status = collect_status(run_checks=False)
    assert status["cells"]["total"] - before["total"] >= 4 and status["cells"]["errors"] - before["errors"] == 1
    assert status["cells"]["p50_seconds"] is not None
    assert status["errors"][0]["error_type"] == "ZeroDivisionError"
    assert status["errors"][0]["kernel_id"]


def test_a_cell_running_another_cell_gets_its_id_back(kernel):
    code = (
        "from sci_ext.core import context\n"
        "outer = context.current().correlation_id\n"
        "get_ipython().run_cell('inner = context.current().correlation_id')\n"
        "(inner != outer, context.current().correlation_id == outer)"
    )
    assert kernel.run(code).check().result["text/plain"] == "(True, True)"
    assert kernel.run("context.current().correlation_id != outer").check().result["text/plain"] == "True"
