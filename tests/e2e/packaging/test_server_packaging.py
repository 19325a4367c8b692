"""`pip install` alone enables the server extension: the wheel carries the server config.

Builds the wheel from this checkout (hatchling, no build isolation) and reads it:
the config must land in ``etc/jupyter/jupyter_server_config.d`` (the path jupyter
reads under sys.prefix), enable ``sci_ext``, and the entry point must answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CONFIG = "etc/jupyter/jupyter_server_config.d/sci_ext.json"


def test_source_config_enables_the_extension() -> None:
    data = json.loads((REPO / "jupyter_config" / "jupyter_server_config.d" / "sci_ext.json").read_text())
    assert data == {"ServerApp": {"jpserver_extensions": {"sci_ext": True}}}


def test_extension_points_are_light() -> None:
    code = (
        "import sys, sci_ext; assert 'jupyter_server' not in sys.modules; "
        "points = sci_ext._jupyter_server_extension_points(); "
        "print(points[0]['module'], points[0]['app'].__name__, points[0]['app'].name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["sci_ext.server.app", "SciExt", "sci_ext"]


@pytest.mark.slow
def test_wheel_ships_the_server_config(built_wheel: Path) -> None:
    wheel = built_wheel
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        shipped = [n for n in names if n.endswith(CONFIG)]
        assert len(shipped) == 1 and shipped[0].split(".data/data/")[1] == CONFIG, shipped
        assert json.loads(zf.read(shipped[0]))["ServerApp"]["jpserver_extensions"]["sci_ext"] is True
        for module in ("app", "handlers", "auth", "multiproc", "sampler", "bridge"):
            assert f"sci_ext/server/{module}.py" in names
