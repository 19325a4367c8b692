"""The JupyterLab extension ``sci-ext`` in a real JupyterLab and a real Chromium.

The server is started by ``lab_harness.LabServer`` with the sci_ext server extension enabled
(the real ``/sci/api/status``), except for the degradation test, which starts one with
it disabled.  Cells run in a real kernel that the page starts.  The only fake is in
``test_gpu_and_llm_rendering``: GPUs and LLM accounting cannot run here, so that test
adds a GPU and an ``llm`` block to the real status answer on its way to the page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable

import pytest
from lab_harness import REPO, LabPage, LabServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATUS_ITEM = "#sci-ext-status"
PANEL = "#sci-ext-panel"
PANEL_TAB = ".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='sci-ext-panel']"
LIVE_TEXT = re.compile(r"CPU [\d.]+% · Mem [\d.]+ [KMGT]?i?B · Cache ")


def status_text(lp: LabPage) -> str:
    return lp.page.locator(STATUS_ITEM).inner_text()


def wait_status_text(lp: LabPage, pattern: re.Pattern[str], timeout: float = 30.0) -> str:
    """Wait until the status item's text matches ``pattern``; returns the text."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = status_text(lp)
        if pattern.search(text):
            return text
        lp.page.wait_for_timeout(200)
    raise AssertionError(f"status item never matched {pattern.pattern!r}; last text {text!r}")


def open_panel(lp: LabPage) -> None:
    """Open the Sci Health panel by clicking the status-bar item."""
    lp.page.locator(STATUS_ITEM).click()
    lp.page.wait_for_selector(f"{PANEL}:not(.lm-mod-hidden) [data-section='checks']")


def test_status_item_shows_live_values_that_change_after_kernel_work(lab: LabServer, lab_page: LabPage) -> None:
    lab.write_notebook(
        "cache_work.ipynb",
        ["%load_ext sci_ext", "%%cached browser_demo\nvalue = sum(range(10_000))\nprint('value', value)"],
    )
    lab_page.open("cache_work.ipynb")
    before = wait_status_text(lab_page, LIVE_TEXT)
    assert "Cache –" in before, before  # no cache request in this server's state dir yet
    dot = lab_page.page.locator(f"{STATUS_ITEM} .sci-ext-dot")
    assert dot.get_attribute("data-level") in {"ok", "degraded", "failing"}

    lab_page.run_cell(0)
    assert "value 49995000" in lab_page.run_cell(1)  # a miss: the cell runs
    assert "value 49995000" in lab_page.run_cell(1)  # a hit: replayed from the cache
    after = wait_status_text(lab_page, re.compile(r"Cache 50%"))
    assert after != before
    # The values really come from the poll: they keep being refreshed.
    count = len(lab_page.status_requests)
    lab_page.page.wait_for_timeout(2500)
    assert len(lab_page.status_requests) > count
    lab_page.screenshot("status-item")


def test_panel_opens_with_health_checks_and_charts(lab: LabServer, lab_page: LabPage) -> None:
    lab_page.open()
    wait_status_text(lab_page, LIVE_TEXT)
    open_panel(lab_page)
    panel = lab_page.page.locator(PANEL)
    assert panel.locator("h2").inner_text() == "Sci Health"
    checks = panel.locator("[data-section='checks'] tbody tr")
    assert checks.count() >= 3
    names = checks.locator("td:first-child").all_inner_texts()
    assert "cache_dir" in names, names
    badges = set(checks.locator(".sci-ext-badge").evaluate_all("els => els.map(e => e.dataset.level)"))
    assert badges <= {"ok", "degraded", "failing"} and badges, badges
    # Charts fill in as samples arrive (refresh interval 1 s in the test settings).
    lab_page.page.wait_for_function(
        "() => (document.querySelector(\"#sci-ext-panel [data-chart='cpu'] path.sci-ext-chart-line\")"
        "?.getAttribute('d') || '').includes('L')",
        timeout=30_000,
    )
    for key in ("cpu", "memory", "cache", "p95"):
        assert panel.locator(f"[data-chart='{key}'] svg").count() == 1
    resources = panel.locator("[data-section='resources']").inner_text()
    assert "CPU" in resources and "Memory" in resources and "Disk free" in resources
    for section in ("kernels", "breakers", "errors", "alerts"):
        assert panel.locator(f"[data-section='{section}']").count() == 1
    lab_page.screenshot("panel")


def test_cpu_in_status_bar_and_panel_reads_one_busy_core(lab: LabServer, lab_page: LabPage) -> None:
    """The status item and the panel show ``100/N`` % while one core spins (not 0/100 flips)."""
    from cpu_oracle import Oracle, assert_one_busy_core, one_core_busy

    lab_page.open()
    wait_status_text(lab_page, LIVE_TEXT)
    open_panel(lab_page)
    resources = lab_page.page.locator(f"{PANEL} [data-section='resources']")
    bar, panel = [], []
    with one_core_busy():
        lab_page.page.wait_for_timeout(2000)  # the server's sampler and the page's poll catch up
        with Oracle() as oracle:
            for _ in range(5):
                lab_page.page.wait_for_timeout(1000)
                bar.append(float(re.search(r"CPU ([\d.]+)%", status_text(lab_page)).group(1)))  # type: ignore[union-attr]
                panel.append(float(re.search(r"CPU\s*([\d.]+)%", resources.inner_text()).group(1)))  # type: ignore[union-attr]
    # The page shows what it polled up to a poll interval ago: give the oracle that slack.
    assert_one_busy_core(bar, oracle.percent, "status bar")
    assert_one_busy_core(panel, oracle.percent, "panel")


# Every box in the panel must lie inside the panel and no text may overflow its box.
OVERFLOW_JS = """
(panel) => {
  const box = panel.getBoundingClientRect();
  const bad = [];
  if (panel.scrollWidth > panel.clientWidth + 1) {
    bad.push(`panel scrolls sideways: ${panel.scrollWidth} > ${panel.clientWidth}`);
  }
  for (const node of panel.querySelectorAll('*')) {
    const r = node.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const what = `${node.tagName.toLowerCase()}.${node.getAttribute('class') || ''} "${(node.textContent || '').slice(0, 40)}"`;
    if (r.right > box.right + 1 || r.left < box.left - 1) {
      bad.push(`${what} [${Math.round(r.left)}, ${Math.round(r.right)}] outside [${Math.round(box.left)}, ${Math.round(box.right)}]`);
    }
    const block = getComputedStyle(node).display !== 'inline';
    if (block && node.clientWidth > 0 && node.scrollWidth > node.clientWidth + 1 && node.tagName !== 'svg') {
      bad.push(`${what} text overflows: ${node.scrollWidth} > ${node.clientWidth}`);
    }
  }
  return bad;
}
"""


def set_panel_width(lp: LabPage, width: int) -> int:
    """Drag the sidebar so the Sci Health panel is ``width`` px wide (give or take a pixel)."""
    panel = lp.page.locator(PANEL)
    lp.resize_left_area(width + 40)
    for _ in range(3):
        now = panel.evaluate("p => p.getBoundingClientRect().width")
        if abs(now - width) <= 2:
            break
        handle = lp.page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first.bounding_box()
        assert handle is not None
        lp.resize_left_area(int(handle["x"] + handle["width"] / 2 + (width - now)))
    lp.page.wait_for_timeout(1500)  # a poll redraws the panel at the new width
    return int(panel.evaluate("p => p.getBoundingClientRect().width"))


def test_panel_reads_at_the_default_sidebar_width_and_at_600(lab: LabServer, lab_page: LabPage) -> None:
    """At ~250 px (JupyterLab's default) and 600 px: every column visible, no text cut, axes in units."""
    import urllib.error
    import urllib.request

    for _ in range(12):  # failed API-key attempts: AuthFailures fires in the server (> 10 a minute)
        req = urllib.request.Request(lab.url + "/sci/metrics", headers={"Authorization": "Bearer sci_bad_not-a-key"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(req, timeout=10)  # noqa: S310  # nosec B310  # the test's own server
    lab.write_notebook(
        "widths.ipynb",
        [
            "%load_ext sci_ext",
            "%%guarded widths --retries 0 --breaker panel-width-check\n"
            "raise ValueError('a researcher-length message that keeps going: ' + 'more words ' * 12)",
        ],
    )
    lab_page.open("widths.ipynb")
    lab_page.run_cell(0)
    assert "ValueError" in lab_page.run_cell(1)
    open_panel(lab_page)
    panel = lab_page.page.locator(PANEL)
    panel.locator(".sci-ext-alert[data-alert='AuthFailures']").wait_for(timeout=30_000)
    panel.locator(".sci-ext-error").first.wait_for(timeout=30_000)
    shots = {}
    for width in (250, 600):
        got = set_panel_width(lab_page, width)
        assert abs(got - width) <= 4, got
        problems = panel.evaluate(OVERFLOW_JS)
        shots[width] = lab_page.screenshot(f"sci-health-panel-{width}")
        assert problems == [], f"at {width} px:\n" + "\n".join(problems)
        # The alert's summary (what is wrong) is shown, and the correlation id in full.
        summary = panel.locator(".sci-ext-alert[data-alert='AuthFailures'] .sci-ext-alert-summary")
        assert "failed API-key attempts" in summary.inner_text() and summary.is_visible()
        corr = panel.locator(".sci-ext-error .sci-ext-corr").first
        cid = corr.inner_text()
        assert len(cid) >= 8 and corr.evaluate("c => c.scrollWidth <= c.clientWidth + 1")
        # Axes in the units of the values above them.
        for key in ("cpu", "memory", "cache"):
            assert panel.locator(f"[data-chart='{key}'] .sci-ext-chart-scale").inner_text() == "max 100%"
        p95 = panel.locator("[data-chart='p95'] .sci-ext-chart-scale").inner_text()
        assert re.fullmatch(r"max \d+(\.\d+)? (ms|s)", p95), p95
    if os.environ.get("SCI_EXT_UPDATE_SCREENSHOTS") == "1":  # refresh the committed ones on purpose only
        for width, shot in shots.items():
            shutil.copyfile(shot, REPO / "docs" / "img" / f"sci-health-panel-{width}.png")


def test_failing_guarded_cell_listed_with_correlation_id(lab: LabServer, lab_page: LabPage) -> None:
    lab.write_notebook(
        "guarded_fail.ipynb",
        [
            "%load_ext sci_ext",
            "%%guarded browser_check --retries 0\n"
            "from sci_ext.core import context\n"
            "print('correlation', context.current().correlation_id)\n"
            "raise ValueError('browser test: the model said no')",
        ],
    )
    lab_page.open("guarded_fail.ipynb")
    lab_page.run_cell(0)
    output = lab_page.run_cell(1)
    match = re.search(r"correlation (\S+)", output)
    assert match and match.group(1) != "None", output
    correlation_id = match.group(1)
    assert "ValueError" in output

    open_panel(lab_page)
    item = lab_page.page.locator(f"{PANEL} .sci-ext-error[data-correlation-id='{correlation_id}']").first
    item.wait_for(timeout=30_000)
    text = item.inner_text()
    assert "ValueError" in text and "the model said no" in text
    assert correlation_id in item.locator(".sci-ext-corr").inner_text()
    lab_page.screenshot("panel-error")
    # The README's screenshot: a wider panel with live data, the error and its correlation id.
    lab_page.resize_left_area(620)
    lab_page.page.wait_for_timeout(1500)  # one more sample drawn at the new width
    shot = lab_page.screenshot("sci-health-panel")
    if os.environ.get("SCI_EXT_UPDATE_SCREENSHOTS") == "1":  # refresh the committed one on purpose only
        shutil.copyfile(shot, REPO / "docs" / "img" / "sci-health-panel.png")


def test_polling_pauses_while_the_tab_is_hidden(lab: LabServer, lab_page: LabPage) -> None:
    lab_page.open()
    wait_status_text(lab_page, LIVE_TEXT)
    t0 = time.monotonic()
    lab_page.page.wait_for_timeout(4000)
    visible = lab_page.status_requests_between(t0, time.monotonic())
    assert visible >= 2, f"{visible} requests in 4 s at a 1 s interval"

    lab_page.set_hidden(True)
    lab_page.page.wait_for_timeout(3000)  # lumino lingers one tick (and it may be in flight)
    t1 = time.monotonic()
    lab_page.page.wait_for_timeout(5000)
    hidden = lab_page.status_requests_between(t1, time.monotonic())
    assert hidden == 0, f"{hidden} requests in 5 s while hidden (1 s interval)"

    t2 = time.monotonic()
    lab_page.set_hidden(False)  # shown again: refreshed at once, then polled again
    deadline = t2 + 15
    while lab_page.status_requests_between(t2, time.monotonic()) < 2:
        assert time.monotonic() < deadline, "polling did not resume after the tab was shown"
        lab_page.page.wait_for_timeout(200)


def test_gpu_and_llm_rendering(lab: LabServer, lab_page: LabPage) -> None:
    """GPUs and LLM accounting cannot run here: add them to the real answer in flight."""

    def add_gpu_and_llm(route) -> None:
        response = route.fetch()
        body = response.json()
        body["resources"]["gpus"] = [
            {"index": 0, "name": "NVIDIA A100 (test)", "utilization_percent": 35.0,
             "memory_used_bytes": 2 * 1024**3, "memory_total_bytes": 40 * 1024**3, "temperature_c": 60}
        ]  # fmt: skip
        body["llm"] = {"calls": 3, "cost_usd": 0.42, "cost_saved_usd": 0.1, "by_model": [
            {"provider": "openai", "model": "gpt-4o", "calls": 3, "cost_usd": 0.42}]}  # fmt: skip
        route.fulfill(response=response, body=json.dumps(body))

    lab_page.page.route(re.compile(r".*/sci/api/status.*"), add_gpu_and_llm)
    lab_page.open()
    wait_status_text(lab_page, re.compile(r"LLM \$0\.42"))
    open_panel(lab_page)
    panel = lab_page.page.locator(PANEL)
    panel.locator("[data-chart='gpu0']").wait_for()
    assert "NVIDIA A100 (test)" in panel.locator("[data-section='resources']").inner_text()
    assert "$0.42 spent" in panel.locator("[data-section='llm']").inner_text()


def test_server_extension_not_enabled(
    lab_factory: Callable[..., LabServer], lab_page_factory: Callable[[LabServer], LabPage]
) -> None:
    bare = lab_factory(server_extension=False)
    assert bare.get("/sci/api/status")[0] == 404
    page = lab_page_factory(bare).open()
    wait_status_text(page, re.compile(r"sci: off"))
    item = page.page.locator(STATUS_ITEM)
    assert "not enabled" in (item.get_attribute("title") or "")
    item.click()
    message = page.page.locator(f"{PANEL}:not(.lm-mod-hidden) .sci-ext-disabled")
    message.wait_for()
    assert "sci_ext server extension not enabled" in message.inner_text()
    page.screenshot("not-enabled")
