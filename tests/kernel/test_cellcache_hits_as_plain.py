"""A hit leaves what a plain run leaves: library state, globals advanced by helpers, restored
notebook classes that libraries wrapped, and a result whose repr fails (issue 25, 25b's F10-F14)."""

from __future__ import annotations

import pytest
from cellcache_shell import run, shell_with_sci_ext, status


@pytest.fixture
def ip():
    yield from shell_with_sci_ext()


def test_library_state_a_cell_sets_is_set_again_on_a_hit(ip, capsys):
    import pandas as pd

    cell = "%%cached\nimport pandas as pd\npd.set_option('display.max_rows', 7)\nrows = 1"
    try:
        run(ip, cell, capsys)[0].raise_error()
        pd.reset_option("display.max_rows")
        run(ip, cell, capsys)[0].raise_error()
        assert status() == "hit" and pd.get_option("display.max_rows") == 7
    finally:
        pd.reset_option("display.max_rows")


def test_a_global_a_helper_advances_is_restored_on_a_hit(ip, capsys):
    ip.run_cell(
        "import numpy as np\nrng = np.random.RandomState(42)\ndef model(n):\n    return rng.randn(n)"
    ).raise_error()
    cell = "%%cached\nfirst = model(3)"
    run(ip, cell, capsys)[0].raise_error()
    expected = ip.user_ns["rng"].randn()
    ip.run_cell("rng = np.random.RandomState(42)").raise_error()
    run(ip, cell, capsys)[0].raise_error()
    assert status() == "hit" and ip.user_ns["rng"].randn() == expected


def test_a_restored_notebook_transformer_keeps_sklearns_wrapper_working(ip, capsys):
    cell = (
        "%%cached\nimport numpy as np\nfrom sklearn.base import BaseEstimator, TransformerMixin\n"
        "class Double(BaseEstimator, TransformerMixin):\n"
        "    def fit(self, X, y=None):\n        return self\n"
        "    def transform(self, X):\n        return np.asarray(X) * 2\n"
        "fitted = Double().fit([[1.0]])"
    )
    run(ip, cell, capsys)[0].raise_error()
    run(ip, cell, capsys)[0].raise_error()
    assert status() == "hit"
    result = ip.run_cell("Double().fit_transform([[2.0]]).tolist()")
    result.raise_error()
    assert result.result == [[4.0]]


def test_a_result_whose_repr_raises_is_not_stored(ip, capsys):
    ip.run_cell("class Bad:\n    def __repr__(self):\n        raise AttributeError('no repr')").raise_error()
    run(ip, "%%cached\nBad()", capsys)
    assert status() == "uncached"
    run(ip, "%%cached\nBad()", capsys)
    assert status() == "uncached"


def test_an_in_place_change_inside_timeit_is_stored(ip, capsys):
    """25b's F15: %timeit's options hid its statement from the analysis, so `counts` was not an input."""
    from sci_ext.kernel.cellcache.analysis import strip_magic_options

    assert strip_magic_options("-n1 -r 3 -o f(x)") == "f(x)" and strip_magic_options("f(-1)") == "f(-1)"
    ip.run_cell("import numpy as np\ncounts = np.zeros(3)").raise_error()
    cell = "%%cached\n%timeit -n1 -r1 np.add.at(counts, [0], 1)"
    run(ip, cell, capsys)[0].raise_error()
    assert ip.user_ns["counts"].tolist() == [1.0, 0.0, 0.0]
    ip.run_cell("counts = np.zeros(3)").raise_error()
    run(ip, cell, capsys)[0].raise_error()
    assert status() == "hit" and ip.user_ns["counts"].tolist() == [1.0, 0.0, 0.0]


DISPLAYS = {
    "repr raises": "class Shown:\n    def __repr__(self):\n        raise AttributeError('no repr')",
    "html raises": "class Shown:\n    def _repr_html_(self):\n        raise AttributeError('no html')\n"
    "    def __repr__(self):\n        return 'shown'",
    "both raise (PDSH display)": "import pandas as pd\nclass Shown:\n    def __init__(self, *args): self.args = args\n"
    "    def _repr_html_(self): return ''.join(eval(a)._repr_html_() for a in self.args)\n"
    "    def __repr__(self): return ''.join(repr(eval(a)) for a in self.args)\n"
    "df1 = pd.DataFrame({'A': [1, 2]})",
}


@pytest.mark.parametrize("define", DISPLAYS.values(), ids=DISPLAYS.keys())
def test_a_result_whose_display_fails_shows_what_a_plain_cell_shows(ip, capsys, monkeypatch, define):
    """25b's F17: a miss formatted the result, then the displayhook formatted it again, so a failing
    formatter's traceback showed twice or more; the plain cell is the oracle."""
    formatter = ip.display_formatter
    monkeypatch.setattr(formatter, "active_types", ["text/plain", "text/html"])
    monkeypatch.setattr(formatter.formatters["text/html"], "enabled", True)
    ip.run_cell(define).raise_error()
    expression = "Shown('df1', 'df1.append(df1)')" if "df1" in define else "Shown()"
    _, plain, _ = run(ip, expression, capsys)
    _, cached, said = run(ip, f"%%cached\n{expression}", capsys)
    assert "Traceback" in plain
    assert cached.count("Traceback") == plain.count("Traceback"), (plain, cached, said)
    assert cached.count("Out[") == plain.count("Out[")
    _, again, _ = run(ip, f"%%cached\n{expression}", capsys)  # a plain cell shows the error every time
    assert again.count("Traceback") == plain.count("Traceback") and status() == "uncached"


def test_a_hit_restoring_an_instance_leaves_its_notebook_class_working(ip, capsys):
    """Unpickling an instance of a notebook class in the kernel that defined it makes cloudpickle
    set the live class's methods to copies holding a snapshot of the globals they read: after the
    hit, the class read stale globals (or none: NameError in a display helper's eval)."""
    ip.run_cell(
        "scale = 2\nclass P:\n    def __init__(self, v):\n        self.v = v\n"
        "    def get(self):\n        return self.v * scale"
    ).raise_error()
    for expected in ("miss", "hit"):
        run(ip, "%%cached\np = P(3)", capsys)[0].raise_error()
        assert status() == expected
    ip.run_cell("scale = 3").raise_error()
    result = ip.run_cell("P(5).get(), p.get()")
    result.raise_error()
    assert result.result == (15, 9)  # as in plain Python: the class reads the live global


@pytest.mark.parametrize("package", [False, True], ids=["module", "package"])
def test_editing_a_local_module_the_cell_imports_is_a_miss(ip, capsys, tmp_path, monkeypatch, package):
    """A helpers.py next to the notebook (no distribution versions it) was keyed '<unversioned>':
    edited, then imported again after a restart, the cell hit with the old helper's result."""
    import sys

    name = f"local_helpers_{int(package)}"
    source = tmp_path / (f"{name}/sub.py" if package else f"{name}.py")
    source.parent.mkdir(exist_ok=True)
    if package:
        (tmp_path / name / "__init__.py").write_text("from .sub import f\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cell = f"%%cached\nimport {name}\nx = {name}.f()"
    seen = []
    for value in (1, 1, 22):
        if value == 22:
            source.write_text("def f():\n    return 22\n")
        else:
            source.write_text("def f():\n    return 1\n")
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, module)  # as after a restart
        run(ip, cell, capsys)[0].raise_error()
        seen.append((status(), ip.user_ns["x"]))
    assert seen == [("miss", 1), ("hit", 1), ("miss", 22)]
