"""``%sci_dashboard`` returns before plotly is imported, draws its charts from the updater thread,
and ``--stop`` closes its own widgets only (a real kernel).

Timing is not asserted (shared CI machines); the structure that makes the magic fast is: the
cell ends with the panel shown and no figure yet, the figure comes later.
"""

from __future__ import annotations

import json


def test_panel_first_charts_later_and_stop_closes_only_its_own(kernel_factory) -> None:
    kernel = kernel_factory()
    res = kernel.run(
        "import ipywidgets, json\n"
        "mine = ipywidgets.IntSlider()\n"
        "%sci_dashboard --interval 0.5\n"
        "magics = get_ipython().magics_manager.registry['DashboardMagics']\n"
        "dash = magics.dashboard\n"
        "print(json.dumps({'figure_at_return': dash.panel.figure is not None, 'running': dash.running}))"
    )
    assert res.error is None, res.error
    state = json.loads(res.stdout.strip().splitlines()[-1])
    assert state == {"figure_at_return": False, "running": True}, state
    assert any("application/vnd.jupyter.widget-view+json" in d for d in res.displays)
    waited = kernel.run(
        "import time\n"
        "deadline = time.monotonic() + 180\n"
        "while dash.panel.figure is None and time.monotonic() < deadline:\n"
        "    time.sleep(0.2)\n"
        "time.sleep(1.5)\n"
        "print(json.dumps({'figure': dash.panel.figure is not None, 'traces': len(dash.panel.figure.data),"
        " 'samples': dash.model.samples, 'errors': dash.errors,"
        " 'cache_axis': list(dash.panel.figure.layout.yaxis4.range)}))"
    )
    assert waited.error is None, waited.error
    drawn = json.loads(waited.stdout.strip().splitlines()[-1])
    assert drawn["figure"] and drawn["traces"] == 6 and drawn["samples"] >= 2 and drawn["errors"] == 0, drawn
    assert drawn["cache_axis"] == [0, 100], drawn  # the cache hit ratio in %, as in the panel
    stopped = kernel.run(
        "%sci_dashboard --stop\n"
        "print(json.dumps({'panel_closed': dash.panel.closed, 'mine_open': mine.comm is not None,"
        " 'running': dash.running}))"
    )
    assert "stopped after" in stopped.stdout
    after = json.loads(stopped.stdout.strip().splitlines()[-1])
    assert after == {"panel_closed": True, "mine_open": True, "running": False}, after
