"""No wrong result from aliasing: a hit restores the sharing between variables, or the cell runs uncached."""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_cached_inprocess import ip, run  # noqa: F401 - the in-process shell fixture

from sci_ext.kernel.cellcache.session import SESSION


def statuses(ip, cells, forget=()):  # noqa: F811
    """Run ``cells`` in order (after dropping ``forget`` from the namespace); their statuses."""
    for name in forget:
        ip.user_ns.pop(name, None)
    out = []
    for cell in cells:
        run(ip, cell)
        out.append(SESSION.last.status)
    return out


def test_numpy_view_then_write_through_it(ip):  # noqa: F811
    ip.user_ns["np"] = np
    cells = [
        "%%cached\ng = np.arange(6)",
        "%%cached\nv = g.reshape(2, 3)",
        "%%cached\nv[0, 0] = 99",
    ]
    assert statuses(ip, cells) == ["miss", "miss", "miss"]
    assert ip.user_ns["g"][0] == 99
    # As after a restart: the variables are gone, every cell hits.
    assert statuses(ip, cells, forget=("g", "v")) == ["hit", "hit", "hit"]
    g, v = ip.user_ns["g"], ip.user_ns["v"]
    assert g[0] == 99 and v[0, 0] == 99
    assert np.shares_memory(g, v)
    v[1, 1] = -1  # the sharing is the notebook's, as without the cache
    assert g[4] == -1


def test_same_object_under_two_names(ip):  # noqa: F811
    cells = ["%%cached\na = [1, 2]", "%%cached\nb = a", "%%cached\nb.append(3)"]
    statuses(ip, cells)
    assert statuses(ip, cells, forget=("a", "b")) == ["hit", "hit", "hit"]
    assert ip.user_ns["b"] is ip.user_ns["a"] and ip.user_ns["a"] == [1, 2, 3]


def test_new_name_for_an_object_changed_in_place(ip):  # noqa: F811
    ip.user_ns["lst"] = [1]
    cell = "%%cached\nlst2 = lst\nlst2.append(2)"
    run(ip, cell)
    ip.user_ns["lst"] = [1]
    ip.user_ns.pop("lst2")
    run(ip, cell)
    assert SESSION.last.status == "hit"
    assert ip.user_ns["lst2"] is ip.user_ns["lst"] and ip.user_ns["lst"] == [1, 2]


def test_dict_changed_in_place_through_an_alias(ip):  # noqa: F811
    ip.user_ns["config"] = {"lr": 0.1}
    ip.user_ns["same"] = ip.user_ns["config"]
    cell = "%%cached\nsame['lr'] = 0.5"
    run(ip, cell)
    ip.user_ns["config"] = ip.user_ns["same"] = {"lr": 0.1}
    run(ip, cell)
    assert SESSION.last.status == "hit"
    assert ip.user_ns["config"] == {"lr": 0.5}


def test_outputs_aliasing_each_other(ip):  # noqa: F811
    ip.user_ns["np"] = np
    cell = "%%cached\nx = y = []\nbase = np.zeros(4)\nhalf = base[:2]"
    statuses(ip, [cell])
    assert statuses(ip, [cell], forget=("x", "y", "base", "half")) == ["hit"]
    assert ip.user_ns["x"] is ip.user_ns["y"]
    assert np.shares_memory(ip.user_ns["base"], ip.user_ns["half"])


def test_sharing_that_cannot_be_restored_runs_uncached(ip, capsys):  # noqa: F811
    ip.user_ns["np"] = np
    run(ip, "big = np.arange(10)\ndef head():\n    return big[:5]")
    cell = "%%cached\nw = head()"
    run(ip, cell)
    err = capsys.readouterr().err
    assert SESSION.last.status == "uncached"
    lines = [line for line in err.splitlines() if "not cached" in line]
    assert len(lines) == 1 and "'w'" in lines[0] and "'big'" in lines[0], err
    run(ip, cell)
    assert SESSION.last.status == "uncached"
    ip.user_ns["w"][0] = 42
    assert ip.user_ns["big"][0] == 42


def test_pandas_view_of_another_variable_runs_uncached(ip, capsys):  # noqa: F811
    ip.user_ns["df"] = pd.DataFrame({"a": np.arange(4.0), "b": np.ones(4)})
    run(ip, "%%cached\ncol = df['a']")
    err = capsys.readouterr().err
    assert np.shares_memory(ip.user_ns["col"].to_numpy(), ip.user_ns["df"]["a"].to_numpy())
    assert SESSION.last.status == "uncached" and "'col' shares memory with 'df'" in err


def test_container_holding_another_variable_runs_uncached(ip, capsys):  # noqa: F811
    ip.user_ns["model"] = {"weights": [1, 2]}
    run(ip, "%%cached\nmodels = [model]")
    err = capsys.readouterr().err
    assert SESSION.last.status == "uncached" and "'model'" in err
