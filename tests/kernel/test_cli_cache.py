"""``jupyter sci cache list|stats|clear`` against a cache filled by a real kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from kernel_harness import REPO


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "sci_ext", "cache", *args], capture_output=True, text=True, env=env)


@pytest.mark.kernel
def test_list_stats_clear_of_entries_written_by_a_kernel(kernel):
    kernel.run("%%cached first\na = 1").check()
    kernel.run("%%cached second\nb = 2").check()
    kernel.run("%%cached first\na = 1").check()

    listing = cli("list")
    assert listing.returncode == 0 and "first" in listing.stdout and "second" in listing.stdout
    entries = json.loads(cli("list", "--json").stdout)
    assert {e["name"]: e["hits"] for e in entries} == {"first": 1, "second": 0}
    stats = json.loads(cli("stats", "--json").stdout)
    assert (stats["hits"], stats["misses"], stats["entries"]) == (1, 2, 2) and stats["bytes"] > 0
    assert "ratio" in cli("stats").stdout

    assert cli("clear", "first").stdout.strip() == "cleared 1 entry (first)"
    assert [e["name"] for e in json.loads(cli("list", "--json").stdout)] == ["second"]
    assert cli("clear", "--all").returncode == 0
    assert json.loads(cli("list", "--json").stdout) == []
    kernel.run("%%cached first\na = 1").check()
    assert (
        "'miss'" in kernel.run("from sci_ext.kernel.cellcache.session import SESSION; SESSION.last.status").check().text
    )


def test_bad_usage_exits_2_with_one_line():
    res = cli("clear")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--all" in res.stderr
    res = cli("clear", "nosuch")
    assert res.returncode == 2 and "no cache entry" in res.stderr
    res = cli("list", "--backend", "memory")
    assert res.returncode == 2 and "inside one kernel" in res.stderr
    res = cli("list", "--backend", "redis")
    assert res.returncode == 2 and "redis_url" in res.stderr


def test_cli_in_process(capsys, kernel_factory=None):
    from sci_ext.cli import main
    from sci_ext.core.cache.layered import get_disk_store
    from sci_ext.core.cache.serialize import pack
    from sci_ext.core.cache.store import EntryInfo
    from sci_ext.core.config import get_config

    cfg = get_config().cache
    store = get_disk_store(cfg.dir, cfg.size_limit_bytes)
    store.set("abc123", pack({"x": 1}), EntryInfo("abc123", "demo", "cell", 100, 0.0), None)
    assert main(["cache", "list"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["cache", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["key"] == "abc123"
    assert main(["cache", "stats"]) == 0 and "entries" in capsys.readouterr().out
    assert main(["cache", "stats", "--json"]) == 0 and json.loads(capsys.readouterr().out)["entries"] == 1
    assert main(["cache", "clear", "abc"]) == 0 and "cleared 1 entry" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 2
    assert main(["cache", "clear", "zzz"]) == 2
    assert main(["cache", "list", "--backend", "memory"]) == 2
    assert main(["cache", "stats", "--backend", "redis"]) == 2
    assert main(["cache", "clear", "--all"]) == 0
