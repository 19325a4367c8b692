"""docs/observability.md names every alert and only settings that exist, with their real defaults."""

from __future__ import annotations

import re
from pathlib import Path

from sci_ext.core.config.sections import MonitoringConfig
from sci_ext.core.telemetry.alerts import ALERT_NAMES, FOR_SECONDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def test_every_alert_is_documented_with_its_for_duration() -> None:
    text = DOC.read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \|[^|]*\| ([^|]+) \|", text, flags=re.M)}
    assert set(rows) == set(ALERT_NAMES), rows
    for name, seconds in FOR_SECONDS.items():
        if name == "HealthCheckFailing":
            continue
        expected = "0" if not seconds else f"{seconds / 60:g} min"
        assert rows[name].strip() == expected, (name, rows[name])


def test_every_setting_named_exists() -> None:
    text = DOC.read_text()
    fields = set(MonitoringConfig.__dataclass_fields__)
    named = set(re.findall(r"monitoring\.(\w+)", text))
    assert named and named <= fields, named - fields
    mon = MonitoringConfig()
    assert f"{mon.slow_cell_factor:g} times its own" in text
    assert f"{mon.failed_calls_threshold} or more calls" in text
    assert f"{mon.memory_threshold_percent:g} %" in text
