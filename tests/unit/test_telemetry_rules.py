"""The Prometheus alerting rules: promtool check rules and promtool test rules."""

from __future__ import annotations

import re
from pathlib import Path

from kernel_harness import REPO
from telemetry_fixtures import promtool

from sci_ext.core.telemetry.alerts import ALERT_NAMES

RULES = Path(REPO) / "jupyter_config" / "prometheus" / "sci_ext.rules.yml"
TESTS = Path(REPO) / "tests" / "prometheus" / "sci_ext.rules.test.yml"


def test_rules_file_is_valid():
    res = promtool("check", "rules", str(RULES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 6 rules found" in res.stdout


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
    text = TESTS.read_text().replace("../../jupyter_config", str(RULES.parent.parent.parent / "jupyter_config"))
    broken.write_text(text.replace('summary: "CPU 95 % > 90 % for 5 min"', 'summary: "CPU 1 %"'))
    res = promtool("test", "rules", str(broken))
    assert res.returncode != 0
