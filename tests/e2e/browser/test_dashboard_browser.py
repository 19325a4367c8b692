"""%sci_dashboard in a real JupyterLab and a real Chromium: drawn, then updated live.

The notebook is run cell by cell with Shift+Enter as a person would; the plotly figure
(``.js-plotly-plot``) must be drawn, and its data must change between two reads while
another cell runs in the same kernel.  A screenshot goes to ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import ARTIFACTS, LabServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLOT = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output .js-plotly-plot"
CELLS = [
    "%load_ext sci_ext",
    "%sci_dashboard --interval 1 --window 5",
    "import time\nfor _ in range(6):\n    time.sleep(0.5)\nprint('other cell done')",
    "%sci_dashboard --stop",
]


def plot_data(page) -> str:
    """The figure's traces as plotly holds them in the page (x and y of every series)."""
    return page.evaluate(
        "(sel) => JSON.stringify(Array.from(document.querySelectorAll(sel)).map("
        "el => (el.data || []).map(t => [Array.from(t.x || []).length, Array.from(t.y || [])])))",
        PLOT,
    )


def test_dashboard_draws_and_updates_while_another_cell_runs(tmp_path: Path, lab_page_factory) -> None:
    lab = LabServer(tmp_path / "lab").start()
    lp = None
    try:
        lab.write_notebook("dashboard.ipynb", CELLS)
        lp = lab_page_factory(lab)
        lp.open("dashboard.ipynb")
        page = lp.page
        console_errors: list[str] = []
        page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
        first = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first
        first.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")  # %load_ext, then the focus moves to the next cell
        lp.wait_kernel_idle()
        page.keyboard.press("Shift+Enter")  # %sci_dashboard
        page.wait_for_selector(".sci-dashboard-header", timeout=90_000)
        page.wait_for_selector(PLOT + " .main-svg", timeout=90_000)
        # Drawn means: the six series are in the page (a redraw may replace an empty first view).
        page.wait_for_function(
            "(sel) => Array.from(document.querySelectorAll(sel)).some(el => (el.data || []).length === 6)",
            arg=PLOT,
            timeout=90_000,
        )
        before = plot_data(page)
        page.keyboard.press("Shift+Enter")  # another cell runs while the dashboard updates
        deadline = time.monotonic() + 60
        after = before
        while after == before and time.monotonic() < deadline:
            page.wait_for_timeout(500)
            after = plot_data(page)
        assert after != before, f"the figure never changed: {before}"
        points = next(p for p in json.loads(after) if len(p) == 6)
        assert len(points) == 6 and points[0][0] >= 2  # six series, at least two samples
        output = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(2).locator(".jp-OutputArea")
        output.get_by_text("other cell done").wait_for(timeout=60_000)
        header = page.locator(".sci-dashboard-header").first.inner_text()
        assert "sci_ext" in header and "CPU" in header
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator(".sci-dashboard").first.screenshot(path=str(ARTIFACTS / "dashboard.png"))
        lp.screenshot("dashboard-lab")
        seen = len(console_errors)
        page.keyboard.press("Shift+Enter")  # %sci_dashboard --stop
        stop_out = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(3).locator(".jp-OutputArea")
        stop_out.get_by_text("sci_dashboard: stopped after").wait_for(timeout=60_000)
        page.wait_for_timeout(3000)  # time for a late widget message to fail, if one would
        after_stop = console_errors[seen:]
        assert not [e for e in after_stop if "comm" in e.lower()], after_stop
    except BaseException:
        if lp is not None:  # what the page showed when it failed, before the server goes
            lp.screenshot("FAILED-dashboard-before-stop")
        raise
    finally:
        lab.stop()
