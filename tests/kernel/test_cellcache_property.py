"""Property: after a %%cached miss (and after the hit that follows), the namespace is exactly what a
plain run leaves, for random sequences of operations on estimators, DataFrames, generators and
containers (issue 25: plain execution is the oracle)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from cellcache_shell import shell_with_sci_ext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sci_ext.core.cache.layered import get_memory_store
from sci_ext.kernel.cellcache.session import SESSION

SETUP = """
import numpy as np, pandas as pd
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.ensemble import RandomForestClassifier
est = Ridge()
knn = KNeighborsClassifier(n_neighbors=2, algorithm='kd_tree')
forest = RandomForestClassifier(n_estimators=3, random_state=0)
X = np.arange(20.0).reshape(10, 2)
y = np.arange(10.0)
labels = np.arange(10) % 2
df = pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z'], 't': pd.to_datetime(['2024-01-01'] * 3)})
lst = [1, 2]
d = {'k': 0, 'nested': {'items': [1]}}
gen = (i * i for i in range(100))
g = np.random.default_rng(0)
arr = np.zeros(4)
view = arr[1:3]
"""

OPS = [
    "est.fit(X, y)",
    "est.set_params(alpha=est.alpha * 2)",
    "knn.fit(X, labels)",
    "p = knn.predict(X[:2])",
    "forest.fit(X, labels)",
    "df['c'] = df['a'] * 2",
    "df.drop(columns=['b'], inplace=True)",
    "df = df.assign(z=1.5)",
    "df.loc[0, 'a'] = 99",
    "s = df['a'].astype('Int64')",
    "lst.append(len(lst))",
    "lst = lst + [0]",
    "d['k'] += 1",
    "d['nested']['items'].append(2)",
    "v = next(gen)",
    "r = g.random()",
    "arr += 1",
    "view[0] = 7",
    "arr[0] = g.integers(10)",
    "del lst",
    "w = est.predict(X[:1])",
    "raise ValueError('cell fails here')",
]
HITS: list[str] = []
NAMES = ("est", "knn", "forest", "X", "df", "lst", "d", "g", "arr", "view", "p", "s", "v", "r", "w")


def _describe(value: Any, depth: int = 0) -> Any:
    """The content of a value, structurally (pickle bytes differ with incidental sharing)."""
    import numpy as np
    import pandas as pd

    if depth > 12:
        return ("deep", type(value).__name__)
    if isinstance(value, (type(None), bool, int, float, complex, str, bytes, type)):
        return repr(value)
    if isinstance(value, np.generic):
        return ("np", value.dtype.str, repr(value.item()))
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, [_describe(v, depth + 1) for v in value.ravel().tolist()])
    if isinstance(value, (pd.DataFrame, pd.Series)):
        frame = value.to_frame() if isinstance(value, pd.Series) else value
        return ("pandas", type(value).__name__, list(map(str, frame.dtypes)), frame.to_dict("split"))
    if isinstance(value, dict):
        return ("dict", [(repr(k), _describe(v, depth + 1)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_describe(v, depth + 1) for v in value])
    if isinstance(value, np.random.Generator):
        return ("rng", repr(value.bit_generator.state))
    state = getattr(value, "__dict__", None)
    if isinstance(state, dict) and state:
        return (type(value).__name__, _describe(state, depth + 1))
    reduce = getattr(value, "__getstate__", None)  # the oracle may call methods; the engine may not
    try:
        return (type(value).__name__, _describe(reduce(), depth + 1)) if reduce else pickle.dumps(value)
    except Exception:
        return ("opaque", type(value).__name__)


def _snapshot(ip: Any, error: BaseException | None) -> dict[str, Any]:
    ns = ip.user_ns
    snap = {name: _describe(ns[name]) for name in NAMES if name in ns}
    snap["<error>"] = type(error).__name__ if error is not None else None
    snap["<gen next>"] = next(ns["gen"], None) if "gen" in ns else None
    # Sharing is state too: a view still shares memory with its base.
    snap["<view shares arr>"] = bool(__import__("numpy").shares_memory(ns["view"], ns["arr"]))
    return snap


@pytest.fixture(scope="module")
def ip():
    yield from shell_with_sci_ext()


def _run(ip: Any, cell: str) -> dict[str, Any]:
    for name in NAMES:
        ip.user_ns.pop(name, None)
    ip.run_cell(SETUP).raise_error()
    result = ip.run_cell(cell, silent=False)
    return _snapshot(ip, result.error_in_exec)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(OPS), min_size=1, max_size=6))
def test_a_cached_miss_and_its_hit_leave_the_state_a_plain_run_leaves(ip, ops):
    body = "\n".join(ops)
    get_memory_store().clear()
    plain = _run(ip, body)
    miss = _run(ip, "%%cached --backend memory --quiet\n" + body)
    assert miss == plain, f"miss differs from plain for:\n{body}"
    if plain["<error>"] is not None:
        return
    assert SESSION.last is not None and SESSION.last.status in ("miss", "uncached")
    again = _run(ip, "%%cached --backend memory --quiet\n" + body)
    HITS.append(SESSION.last.status)
    if SESSION.last.status == "hit":
        assert again == plain, f"hit differs from plain for:\n{body}"


def test_the_property_above_exercised_hits():
    """Guards the property against vacuity: some of its examples were restored from the cache."""
    if not HITS:
        pytest.skip("run together with the property test")
    assert HITS.count("hit") >= 3, HITS
