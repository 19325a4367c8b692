"""`%sci_config` in a real kernel: display, overrides, errors, reload, save, migrate."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.module_kernel]
DATA = Path(__file__).parents[1] / "data"


def test_table_has_value_type_and_source_in_html_and_text(kernel):
    res = kernel.run("%sci_config rag").check()
    html = res.displays[0]["text/html"]
    assert "<table" in html and "rag.chunk_size" in html and "<code>1000</code>" in html and "default" in html
    text = res.displays[0]["text/plain"]
    assert "rag.similarity_threshold" in text and "number" in text
    res = kernel.run("%sci_config").check()
    assert all(
        f"{s}." in res.displays[0]["text/plain"]
        for s in ("core", "cache", "retry", "breaker", "security", "monitoring", "rag", "bfts")
    )


def test_overrides_are_validated_and_shown_with_runtime_source(kernel):
    res = kernel.run("%sci_config cache.ttl_seconds=600 retry.max_attempts=5").check()
    assert "cache.ttl_seconds = 600.0  (runtime)" in res.stdout
    res = kernel.run(
        "from sci_ext import get_config\nget_config().cache.ttl_seconds, str(get_config().source('retry.max_attempts'))"
    ).check()
    assert res.result["text/plain"] == "(600.0, 'runtime')"
    res = kernel.run("%sci_config retry.max_attempts").check()
    assert "runtime" in res.displays[0]["text/plain"]


def test_bad_input_is_a_one_line_usage_error_and_kernel_survives(kernel):
    """The kernel's side; every kind of bad input is checked in-process (test_config_magic_inprocess)."""
    res = kernel.run("%sci_config cache.ttl_second=5")
    assert res.error is not None and res.error["ename"] == "UsageError", res.error
    assert "did you mean cache.ttl_seconds?" in res.error["evalue"]
    assert "\n" not in res.error["evalue"]
    assert kernel.run("1 + 1").result["text/plain"] == "2"


def test_bad_value_keeps_the_previous_value(kernel):
    kernel.run("%sci_config rag.top_k=7").check()
    assert kernel.run("%sci_config rag.top_k=-3").error is not None
    assert kernel.run("import sci_ext; sci_ext.get_rag_config().top_k").result["text/plain"] == "7"
    kernel.run("%sci_config --reset rag.top_k").check()
    assert kernel.run("sci_ext.get_rag_config().top_k").result["text/plain"] == "5"


def test_env_override_in_a_kernel(kernel_factory):
    kernel = kernel_factory(env={"SCI_EXT_RAG__TOP_K": "13"})
    res = kernel.run("%sci_config rag.top_k").check()
    assert "13" in res.displays[0]["text/plain"] and "env (SCI_EXT_RAG__TOP_K)" in res.displays[0]["text/plain"]


def test_validate_reload_and_save(kernel, sci_env):
    project = sci_env["project"] / "sci_ext.toml"
    res = kernel.run("%sci_config --validate").check()
    assert "config valid" in res.stdout
    kernel.run("%sci_config rag.top_k=21").check()
    res = kernel.run("%sci_config --save project").check()
    assert str(project) in res.stdout and "top_k = 21" in project.read_text()
    project.write_text(project.read_text().replace("top_k = 21", "top_k = 22"))
    res = kernel.run("%sci_config --reload").check()
    # Hot reload (a stat of the files when a cell starts) may see the edit before --reload does.
    assert "changed" in res.stdout or "config reloaded (rag.top_k)" in res.stderr, res
    project.write_text(project.read_text().replace("top_k = 22", "top_k = 'x'"))
    res = kernel.run("%sci_config --validate")
    assert res.error["ename"] == "UsageError" and "expected an integer" in res.error["evalue"]
    assert "sci_ext.toml line" in res.stderr
    assert (
        kernel.run("sci_ext_top_k = __import__('sci_ext').get_rag_config().top_k; sci_ext_top_k").result["text/plain"]
        == "22"
    )


def test_hot_reload_notice_appears_at_next_cell(kernel_factory, sci_env):
    project = sci_env["project"] / "sci_ext.toml"
    project.write_text("[rag]\ntop_k = 3\n")
    kernel = kernel_factory(env={"SCI_EXT_CORE__RELOAD_INTERVAL_SECONDS": "0.1"})
    # The kernel reads the configuration at its first use (not at %load_ext): read it now.
    assert kernel.run("import sci_ext; sci_ext.get_rag_config().top_k").result["text/plain"] == "3"
    project.write_text("[rag]\ntop_k = 'bad'\n")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        res = kernel.run("import sci_ext; sci_ext.get_rag_config().top_k")
        if "config change rejected" in res.stderr:
            break
        time.sleep(0.2)
    assert "keeping the previous config" in res.stderr and res.result["text/plain"] == "3"
    project.write_text("[rag]\ntop_k = 4\n")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        res = kernel.run("sci_ext.get_rag_config().top_k")
        if res.result["text/plain"] == "4":
            break
        time.sleep(0.2)
    assert res.result["text/plain"] == "4"


def test_migrate_from_the_magic(kernel, sci_env):
    shutil.copy(DATA / "bfts_config.yaml", sci_env["project"] / "bfts_config.yaml")
    res = kernel.run("%sci_config --migrate bfts_config.yaml --dry-run").check()
    assert "dry run" in res.stdout and "+[bfts.agent]" in res.stdout
    assert not (sci_env["project"] / "sci_ext.toml").exists()
    res = kernel.run("%sci_config --migrate bfts_config.yaml").check()
    assert "migrated into" in res.stdout
    res = kernel.run(
        "sci_ext.get_config().bfts.agent.num_workers"
        if False
        else "import sci_ext; sci_ext.get_config().bfts.agent.num_workers"
    ).check()
    assert res.result["text/plain"] == "4"


def test_help_is_available(kernel):
    res = kernel.run("%sci_config?").check()
    payload = str(res.payload)
    assert "--migrate" in payload and "KEY=VALUE" in payload
