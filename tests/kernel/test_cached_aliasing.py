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


def test_pandas_objects_sharing_memory_are_cached_under_copy_on_write(ip, capsys):  # noqa: F811
    """With Copy-on-Write (always on in pandas >= 3) a write to one pandas object never shows in
    another that shares its memory, so restoring independent copies is what running the cell does.
    The plain run is the oracle: the same writes after the hit leave the same values."""
    assert int(pd.__version__.split(".")[0]) >= 3  # CoW cannot be switched off: what the engine relies on
    ip.user_ns["pd"], ip.user_ns["np"] = pd, np
    setup = "df = pd.DataFrame({'a': np.arange(4.0), 'b': np.arange(4) * 2, 'e': list('wxyz')})"
    cell = "%%cached\ncol = df['a']\nidx = df.set_index('e')\nhead = df.iloc[:2]\nrest = df.drop('b', axis=1)"
    writes = "col.iloc[0] = 99.0\nhead.iloc[1, 0] = -1.0\nidx.iloc[0, 0] = 7.0\ndf.iloc[3, 1] = 100"
    probe = (
        "state = (df.to_dict('list'), col.tolist(), idx.to_dict('list'), head.to_dict('list'), rest.to_dict('list'))"
    )
    run(ip, setup)
    run(ip, cell[len("%%cached\n") :] + "\n" + writes + "\n" + probe)
    plain = ip.user_ns["state"]
    run(ip, setup)
    run(ip, cell)
    assert SESSION.last.status == "miss", capsys.readouterr().err
    assert np.shares_memory(ip.user_ns["col"].to_numpy(), ip.user_ns["df"]["a"].to_numpy())
    run(ip, setup)
    for name in ("col", "idx", "head", "rest"):
        ip.user_ns.pop(name)
    run(ip, cell)
    assert SESSION.last.status == "hit"
    run(ip, writes + "\n" + probe)
    assert ip.user_ns["state"] == plain


def test_a_series_over_a_writable_array_runs_uncached(ip, capsys):  # noqa: F811
    """numpy writes are not Copy-on-Write: a Series made over an array without a copy sees them."""
    ip.user_ns["arr"] = np.arange(4.0)
    ip.user_ns["pd"] = pd
    run(ip, "%%cached\ns = pd.Series(arr, copy=False)")
    err = capsys.readouterr().err
    assert SESSION.last.status == "uncached" and "'s' shares memory with 'arr'" in err
    ip.user_ns["arr"][0] = 9.0
    assert ip.user_ns["s"].iloc[0] == 9.0  # why: the sharing is visible


def test_disjoint_views_of_one_array_are_cached_and_overlapping_ones_are_not(ip, capsys):  # noqa: F811
    """``x, y = points.T`` gives two views whose bytes interleave but never overlap: no write to
    one shows in the other, so independent copies behave as the views do."""
    ip.user_ns["np"] = np
    cell = "%%cached\nx, y = np.random.default_rng(0).random((5, 2)).T"
    run(ip, cell)
    assert SESSION.last.status == "miss", capsys.readouterr().err
    x, y = ip.user_ns["x"].copy(), ip.user_ns["y"].copy()
    for name in ("x", "y"):
        ip.user_ns.pop(name)
    run(ip, cell)
    assert SESSION.last.status == "hit"
    assert (ip.user_ns["x"] == x).all() and (ip.user_ns["y"] == y).all()
    ip.user_ns["x"][0] = -1.0
    assert (ip.user_ns["y"] == y).all()
    run(ip, "%%cached\nu, w = (lambda b: (b[::2][:3], b[4:]))(np.arange(10.0))")
    err = capsys.readouterr().err
    assert SESSION.last.status == "uncached" and "shares memory" in err


def test_container_holding_another_variable_runs_uncached(ip, capsys):  # noqa: F811
    ip.user_ns["model"] = {"weights": [1, 2]}
    run(ip, "%%cached\nmodels = [model]")
    err = capsys.readouterr().err
    assert SESSION.last.status == "uncached" and "'model'" in err
