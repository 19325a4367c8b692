"""Replay is replay: a hit shows the stored outputs as data and never renders the restored value again."""

from __future__ import annotations

import re
import sys

import pytest
from test_cached_inprocess import ip, run  # noqa: F401 - the in-process shell fixture

from sci_ext.kernel.cellcache.session import SESSION

SHOWER = """from IPython import get_ipython


class Show:
    def __repr__(self):
        # Looks a name up when rendered: a second rendering in another state fails or differs.
        return "label is " + eval("label_9a", get_ipython().user_ns)
"""


def test_hit_shows_stored_result_without_rendering_it(ip, capsys, sci_env, monkeypatch):  # noqa: F811
    (sci_env["project"] / "shower9a.py").write_text(SHOWER)
    monkeypatch.syspath_prepend(str(sci_env["project"]))
    ip.user_ns["label_9a"] = "first"
    cell = "%%cached show\nimport shower9a\nshower9a.Show()"
    run(ip, cell)
    assert SESSION.last.status == "miss"
    assert "label is first" in capsys.readouterr().out
    del ip.user_ns["label_9a"]
    run(ip, cell)
    captured = capsys.readouterr()
    assert SESSION.last.status == "hit"
    assert "label is first" in captured.out
    assert "NameError" not in captured.out + captured.err
    # Out[n] and _ hold the restored value itself, not a stand-in.
    assert type(ip.user_ns["_"]).__name__ == "Show"
    assert ip.user_ns["Out"][max(ip.user_ns["Out"])] is ip.user_ns["_"]
    sys.modules.pop("shower9a", None)


def test_memoryview_result_text_is_identical(ip, capsys):  # noqa: F811
    cell = "%%cached mv\nbuf = bytearray(b'abc')\nmemoryview(buf)"
    run(ip, cell)
    first = re.findall(r"<memory at 0x[0-9a-f]+>", capsys.readouterr().out)
    run(ip, cell)
    second = re.findall(r"<memory at 0x[0-9a-f]+>", capsys.readouterr().out)
    assert SESSION.last.status == "hit"
    assert first and second == first


@pytest.mark.kernel
def test_inline_figure_drawn_after_the_cell_replays(kernel):
    kernel.run("%matplotlib inline").check()
    cell = "%%cached fig\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nx_9a = 1"
    miss = kernel.run(cell).check()
    assert [d for d in miss.displays if "image/png" in d], miss.outputs
    hit = kernel.run(cell).check()
    assert "restored" in hit.stdout
    pngs = [d for d in hit.displays if "image/png" in d]
    assert len(pngs) == 1, hit.outputs
    assert pngs[0]["image/png"] == [d for d in miss.displays if "image/png" in d][0]["image/png"]
