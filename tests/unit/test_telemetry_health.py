"""Health checks: registry, statuses, raising and hanging checks, built-ins, Redis, the CLI."""

from __future__ import annotations

import json
import time

import pytest
from security_fixtures import cli

from sci_ext.core.telemetry.health import HealthReport, health_check, run_health_checks, unregister_check


@pytest.fixture
def checks():
    names: list[str] = []
    yield names
    for name in names:
        unregister_check(name)


def test_builtins_run_and_report_timings(sci_env):
    report = run_health_checks()
    names = [c.name for c in report.checks]
    assert names == ["cache_dir", "disk", "memory", "cpu", "vault", "private_dirs"]  # no redis: none configured
    assert report.status in ("ok", "degraded")  # cpu may be busy on a shared machine
    by = {c.name: c for c in report.checks}
    assert by["cache_dir"].status == "ok" and by["cache_dir"].detail.startswith("writable")
    assert by["vault"].detail == "no vault yet"
    assert all(c.duration_ms >= 0 and c.since <= time.time() for c in report.checks)


def test_return_forms_and_worst_status(sci_env, checks):
    forms = {
        "none": None,
        "true": True,
        "false": False,
        "word": "degraded",
        "pair": ("ok", "fine"),
        "dict": {"status": "degraded", "detail": "half"},
        "odd": 42,
        "badstatus": ("sideways", "?"),
    }
    for name, value in forms.items():
        health_check(f"f-{name}")(lambda value=value: value)
        checks.append(f"f-{name}")
    report = run_health_checks(checks)
    got = {c.name[2:]: (c.status, c.detail) for c in report.checks}
    assert got["none"] == ("ok", "ok") and got["true"] == ("ok", "ok")
    assert got["false"] == ("failing", "check returned False")
    assert got["word"] == ("degraded", "degraded")
    assert got["pair"] == ("ok", "fine") and got["dict"] == ("degraded", "half")
    assert got["odd"] == ("failing", "check returned int, not a status")
    assert got["badstatus"][0] == "failing" and "sideways" in got["badstatus"][1]
    assert report.status == "failing"


def test_raising_and_hanging_checks_fail_with_the_reason_and_never_block(sci_env, checks):
    @health_check("raises")
    def raises():
        raise ConnectionRefusedError("db down")

    @health_check("hangs", timeout=0.3)
    def hangs():
        time.sleep(30)

    @health_check
    async def async_ok():
        return "ok", "async fine"

    checks.extend(["raises", "hangs", "async_ok"])
    t0 = time.perf_counter()
    report = run_health_checks(checks)
    assert time.perf_counter() - t0 < 5
    by = {c.name: c for c in report.checks}
    assert by["raises"].status == "failing" and by["raises"].detail == "ConnectionRefusedError: db down"
    assert by["hangs"].status == "failing" and by["hangs"].detail == "timed out after 0.3 s"
    assert by["async_ok"].detail == "async fine"
    # Still hanging: reported as such at once, not started a second time.
    again = {c.name: c for c in run_health_checks(["hangs"]).checks}
    assert again["hangs"].status == "failing" and "hangs" in again["hangs"].detail


def test_since_is_kept_while_the_status_does_not_change(sci_env, checks):
    state = {"status": "ok"}
    health_check("flip")(lambda: state["status"])
    checks.append("flip")
    first = run_health_checks(["flip"]).checks[0]
    time.sleep(0.01)
    assert run_health_checks(["flip"]).checks[0].since == first.since
    state["status"] = "failing"
    assert run_health_checks(["flip"]).checks[0].since > first.since


def test_bad_registration_is_a_clear_error():
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        health_check("  ")
    with pytest.raises(ValueError, match="timeout must be > 0"):
        health_check("x", timeout=0)(lambda: None)
    with pytest.raises(TypeError, match="expected a function"):
        health_check("x")(3)
    with pytest.raises(ValueError, match="unknown health check"):
        run_health_checks(["nope"])


def test_report_renders_text_and_html():
    from sci_ext.core.telemetry.health import CheckResult

    report = HealthReport("failing", [CheckResult("db<1>", "failing", "a & b", 1.25, 0.0)], 0.0)
    assert "db<1>" in str(report) and "failing" in str(report) and "1.2" in str(report)
    html = report._repr_html_()
    assert "db&lt;1&gt;" in html and "a &amp; b" in html
    assert report.as_dict()["checks"][0]["name"] == "db<1>"


def test_vault_and_cache_dir_failures(sci_env, monkeypatch, tmp_path):
    from sci_ext.core.config import get_config_manager

    vault = tmp_path / "vault.json"
    vault.write_text("[1, 2]")
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    manager = get_config_manager()
    manager.set("security.vault_path", str(vault))
    manager.set("cache.dir", str(blocker / "cells"))
    by = {c.name: c for c in run_health_checks(["vault", "cache_dir"]).checks}
    assert by["vault"].status == "failing" and "not a vault" in by["vault"].detail
    assert by["cache_dir"].status == "failing" and "NotADirectoryError" in by["cache_dir"].detail


def test_disk_check_degrades_below_the_configured_minimum(sci_env):
    from sci_ext.core.config import get_config_manager

    get_config_manager().set("monitoring.min_free_disk_bytes", 2**62)
    check = run_health_checks(["disk"]).checks[0]
    assert check.status == "failing" and "min_free_disk_bytes" in check.detail


@pytest.mark.redis
def test_redis_check_only_when_configured(sci_env, redis_server):
    from sci_ext.core.config import get_config_manager

    get_config_manager().set("cache.redis_url", redis_server.url)
    by = {c.name: c for c in run_health_checks().checks}
    assert by["redis"].status == "ok" and "PING answered" in by["redis"].detail
    get_config_manager().set("cache.redis_url", "redis://127.0.0.1:1/0")
    by = {c.name: c for c in run_health_checks().checks}
    assert by["redis"].status == "failing" and "ConnectionError" in by["redis"].detail


def test_cli_health_exit_status(sci_env, tmp_path):
    ok = cli("health", "--json")
    report = json.loads(ok.stdout)
    assert ok.returncode == (1 if report["status"] == "failing" else 0)
    assert {c["name"] for c in report["checks"]} >= {"cache_dir", "disk", "memory", "cpu", "vault"}
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    bad = cli("health", "--check", "cache_dir", env={"SCI_EXT_CACHE__DIR": str(blocker / "c")})
    assert bad.returncode == 1 and "cache_dir  failing" in bad.stdout
    usage = cli("health", "--check", "nosuch")
    assert usage.returncode == 2 and "unknown health check(s): nosuch" in usage.stderr
    assert cli("health", "--timeout", "0").returncode == 2
