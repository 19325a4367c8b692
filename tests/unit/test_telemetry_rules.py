"""The Prometheus alerting rules: promtool check rules and promtool test rules."""

from __future__ import annotations

import re
from pathlib import Path

from kernel_harness import REPO
from telemetry_fixtures import promtool

from sci_ext.core.telemetry.alerts import ALERT_NAMES

RULES = Path(REPO) / "monitoring" / "prometheus" / "sci_ext.rules.yml"
TESTS = Path(REPO) / "tests" / "prometheus" / "sci_ext.rules.test.yml"


def test_rules_file_is_valid():
    res = promtool("check", "rules", str(RULES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 8 rules found" in res.stdout


def test_rules_unit_tests_pass():
    res = promtool("test", "rules", str(TESTS))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_rules_and_library_alerts_have_the_same_names():
    names = re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), flags=re.M)
    assert sorted(names) == sorted(ALERT_NAMES)
    tested = set(re.findall(r"alertname: (\w+)", TESTS.read_text()))
    assert tested == set(ALERT_NAMES)


def test_a_broken_expectation_fails(tmp_path):
    broken = tmp_path / "broken.test.yml"
    text = TESTS.read_text().replace("../../monitoring", str(RULES.parent.parent))
    assert 'summary: "memory 95 % of the limit (>= 90 %)"' in text
    broken.write_text(text.replace('summary: "memory 95 % of the limit (>= 90 %)"', 'summary: "memory 1 %"'))
    res = promtool("test", "rules", str(broken))
    assert res.returncode != 0


def test_every_rule_is_tested_firing_and_not_firing():
    """Each alert has at least one ``exp_alerts: []`` and one expected alert in the promtool tests."""
    text = TESTS.read_text()
    cases = re.findall(r"alertname: (\w+)\n\s+exp_alerts:( \[\])?", text)
    for name in ALERT_NAMES:
        kinds = {bool(empty) for alert, empty in cases if alert == name}
        assert kinds == {True, False}, (name, kinds)


def test_rule_thresholds_match_the_config_defaults():
    """The rules file's numbers are the ``monitoring`` defaults the in-process monitor uses."""
    from sci_ext.core.config.sections import MonitoringConfig
    from sci_ext.core.telemetry.alerts import FOR_SECONDS

    mon = MonitoringConfig()
    text = RULES.read_text()
    assert f">= {mon.failed_calls_threshold}" in text and f">= {mon.memory_threshold_percent:g}" in text
    assert f"> {mon.auth_failures_per_minute}" in text and f"> {mon.latency_threshold_seconds:g}" in text
    assert f">= {mon.slow_cell_factor:g}" in text and f"[{mon.window_seconds / 60:g}m]" in text
    fors = {}
    for block in text.split("- alert: ")[1:]:
        found = re.search(r"^\s+for: (\d+)m$", block, flags=re.M)
        if found:
            fors[block.split()[0]] = found.group(1)
    for name, seconds in FOR_SECONDS.items():
        if name == "HealthCheckFailing":  # in-process the condition itself holds check_failing_seconds
            assert fors.get(name) == f"{mon.check_failing_seconds / 60:g}"
        elif seconds:
            assert fors.get(name) == f"{seconds / 60:g}", (name, fors)
