"""A %%cached miss is a plain run: the plain cell, in a real kernel, is the oracle (issue 25)."""

from __future__ import annotations

STATUS = "from sci_ext.kernel.cellcache.session import SESSION as _S\n_S.last.status"

GRID_SETUP = (
    "import numpy as np\nfrom sklearn.model_selection import GridSearchCV\nfrom sklearn.linear_model import Ridge\n"
    "rng = np.random.RandomState(1)\nX = rng.rand(40, 1)\ny = X.ravel() * 3\n"
    "grid = GridSearchCV(Ridge(), {'alpha': [0.1, 1.0, 10.0]}, cv=7)"
)


def _kinds(result):
    return [out["type"] for out in result.outputs if out["type"] != "stream"]


def test_grid_search_fit_under_cached_behaves_as_plain_then_hits(kernel):
    kernel.run(GRID_SETUP).check()
    plain = kernel.run("grid.fit(X, y)").check()
    plain_best = kernel.run("grid.best_params_, list(grid.cv_results_['param_alpha'])").check().result
    kernel.run(GRID_SETUP).check()
    cached = kernel.run("%%cached\ngrid.fit(X, y)")
    assert cached.error is None, cached.error and cached.error["evalue"]
    assert cached.result["text/plain"] == plain.result["text/plain"]  # the HTML numbers its widgets
    assert kernel.run("grid.best_params_, list(grid.cv_results_['param_alpha'])").check().result == plain_best
    assert kernel.run(STATUS).check().result["text/plain"] == "'miss'"
    kernel.run(GRID_SETUP).check()
    again = kernel.run("%%cached\ngrid.fit(X, y)").check()
    assert kernel.run(STATUS).check().result["text/plain"] == "'hit'"
    assert again.result["text/plain"] == plain.result["text/plain"]
    assert kernel.run("grid.best_params_, list(grid.cv_results_['param_alpha'])").check().result == plain_best


def test_a_plot_result_comes_before_its_figure_on_a_miss_and_a_hit(kernel):
    kernel.run("%matplotlib inline\nimport pandas as pd\ndf = pd.DataFrame({'a': [1, 3, 2]})").check()
    plain = kernel.run("df.plot()").check()
    assert _kinds(plain) == ["execute_result", "display_data"]
    miss = kernel.run("%%cached --quiet\ndf.plot()").check()
    assert _kinds(miss) == _kinds(plain)
    hit = kernel.run("%%cached --quiet\ndf.plot()").check()
    assert kernel.run(STATUS).check().result["text/plain"] == "'hit'"
    assert _kinds(hit) == _kinds(plain)
    assert "image/png" in hit.outputs[-1]["data"]
    assert kernel.run("_ is Out[max(Out)]").check().result["text/plain"] == "True"


def test_a_failing_cell_keeps_its_helper_and_the_next_cell_runs(kernel):
    res = kernel.run("%%cached\ndef helper(v):\n    return v * 2\nraise RuntimeError('late failure')")
    assert res.error is not None and res.error["ename"] == "RuntimeError"
    assert kernel.run("helper(21)").check().result["text/plain"] == "42"
