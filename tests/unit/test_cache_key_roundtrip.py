"""Stable keys: ``key(v) == key(restore(store(v)))`` for the values notebooks hold.

If a restored value keyed differently from the value it was stored from, every
cached cell downstream of it would miss once after each kernel restart.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.extra import pandas as hpd

from sci_ext.core.cache.keys import hash_value
from sci_ext.core.cache.serialize import pack, unpack


def restore_of(value):
    """Store ``value`` in the entry format the cache writes, then restore it."""
    packed = pack({"v": value}, mmap_min_bytes=64)
    data = b"".join(bytes(chunk) for chunk in packed.chunks())
    return unpack(data)[0]["v"]


def assert_stable(value):
    assert hash_value(value) == hash_value(restore_of(value))


@dataclasses.dataclass
class Point:
    x: float
    tags: list[str]
    extra: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str
    weight: float


@functools.cache
def estimators() -> tuple:
    """Unfitted and fitted scikit-learn estimators, built at first use: fitting them at import
    would cost every pytest worker's collection about a second."""
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = (X[:, 0] > 0.5).astype(int)
    unfitted = [LogisticRegression(C=0.5), Ridge(), make_pipeline(StandardScaler(), LogisticRegression())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = [
            LogisticRegression().fit(X, y),
            StandardScaler().fit(X),
            Ridge().fit(X, X[:, 1]),
            make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
            RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
            KMeans(n_clusters=2, n_init=1, random_state=0).fit(X),
            OneHotEncoder().fit(np.array([["a"], ["b"], ["a"]])),
            # Issue 25: trees pickled by their own __reduce__ keyed differently once restored.
            KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
            KNeighborsClassifier(algorithm="ball_tree").fit(X, y),
            KNeighborsClassifier(n_neighbors=3).fit(pd.DataFrame(X, columns=list("abc")), y),
            make_pipeline(
                ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])]),
                LogisticRegression(),
            ).fit(pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": list("xy") * 20}), y),
        ]
    return tuple(unfitted + fitted)


#: The classes of ``estimators()`` in order, for the cases' ids (collection does not fit them).
ESTIMATOR_IDS = (
    *("LogisticRegression", "Ridge", "Pipeline"),
    *("LogisticRegression", "StandardScaler", "Ridge", "Pipeline", "RandomForestClassifier", "KMeans"),
    *("OneHotEncoder", "KNeighborsClassifier", "KNeighborsClassifier", "KNeighborsClassifier", "Pipeline"),
)


def test_estimator_ids_name_the_estimators():
    assert tuple(type(e).__name__ for e in estimators()) == ESTIMATOR_IDS


@pytest.mark.parametrize("index", range(len(ESTIMATOR_IDS)), ids=ESTIMATOR_IDS)
def test_estimators_fitted_and_unfitted(index):
    assert_stable(estimators()[index])


def _frames():
    base = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    base["b"] = [4.0, 5.0, 6.0]  # a second block of the same dtype (not consolidated)
    base["c"] = ["x", "y", "z"]
    return {
        "unconsolidated": base,
        "transposed": pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=list("abc")).T,
        "categorical": pd.DataFrame({"c": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True)}),
        "nullable": pd.DataFrame(
            {"i": pd.array([1, None, 3], dtype="Int64"), "s": pd.array(["a", None, "c"], "string")}
        ),
        "datetime_tz": pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, tz="UTC")}),
        "datetime_index": pd.DataFrame({"v": [1, 2, 3]}, index=pd.date_range("2024", periods=3, freq="D")),
        "multiindex": pd.DataFrame(
            {"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
        ),
        "interval": pd.DataFrame({"v": [1, 2]}, index=pd.interval_range(0, 2)),
        "series": pd.Series([1.5, None], name="s", index=["p", "q"]),
        "period": pd.Series(pd.period_range("2024-01", periods=2, freq="M")),
        "attrs": base.assign(d=1).pipe(lambda f: (f.attrs.update({"unit": "m"}), f)[1]),
        "every_dtype": pd.DataFrame(
            {
                "i8": np.arange(3, dtype="int8"),
                "u64": np.arange(3, dtype="uint64"),
                "f32": np.arange(3, dtype="float32"),
                "c128": np.arange(3) * 1j,
                "b": [True, False, True],
                "obj": [{"k": 1}, None, "s"],
                "str": pd.array(["a", "b", None], dtype="string"),
                "bool_na": pd.array([True, None, False], dtype="boolean"),
                "f64_na": pd.array([1.5, None, 2.5], dtype="Float64"),
                "td": pd.to_timedelta([1, 2, 3], unit="s"),
                "dt": pd.to_datetime(["2024-01-01", None, "2024-01-03"]),
                "cat": pd.Categorical(["a", "b", "a"]),
                "sparse": pd.arrays.SparseArray([0, 0, 1]),
            }
        ),
        "nested": pd.Series([[1, 2], {"a": 3}, (4,)], dtype=object),
    }


@pytest.mark.parametrize("name", sorted(_frames()))
def test_pandas_objects(name):
    assert_stable(_frames()[name])


def test_pandas_keys_still_follow_content():
    frame = _frames()["unconsolidated"]
    changed = frame.copy()
    changed.iloc[0, 0] = 99.0
    assert hash_value(frame) != hash_value(changed)
    assert hash_value(frame) != hash_value(frame[["b", "a", "c"]])
    assert hash_value(frame) != hash_value(frame.astype({"a": "float32"}))
    assert hash_value(frame) != hash_value(frame.rename_axis("idx"))
    cat = _frames()["categorical"]
    assert hash_value(cat) != hash_value(cat.astype({"c": pd.CategoricalDtype(["lo", "hi"], ordered=False)}))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
)
hashable = st.one_of(scalars, st.tuples(scalars, scalars), st.frozensets(st.integers(), max_size=4))
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.int32, np.bool_, np.complex128, np.dtype("<U3")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
)
frames = hpd.data_frames(
    columns=hpd.columns(["a", "b"], elements=st.floats(allow_nan=False, allow_infinity=False)),
    index=hpd.range_indexes(max_size=5),
)
dataclass_values = st.builds(
    Point,
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
) | st.builds(Frozen, st.text(max_size=5), st.floats(allow_nan=False))
leaves = st.one_of(
    scalars,
    arrays,
    arrays.map(lambda a: a.T),  # non-contiguous views
    frames,
    dataclass_values,
    st.deferred(lambda: st.sampled_from(estimators())),
    st.sets(hashable, max_size=4),
    st.frozensets(hashable, max_size=4),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_key_of_restored_equals_key_of_original(value):
    assert_stable(value)


def test_estimators_and_frames_nested_in_containers():
    """A dict of lists holding fitted estimators and frames keys the same once restored (issue 25)."""
    frames = _frames()
    nested = {"models": list(estimators()[-4:]), "data": [frames["every_dtype"], {"deep": [frames["nullable"]]}]}
    assert_stable(nested)


def test_dict_subclasses_key_by_their_items_and_survive_a_restore():
    """sklearn's Bunch (a dict subclass whose __setstate__ drops its instance dict) keyed differently
    once restored; its items must count (issue 25)."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    assert_stable(bunch)
    changed = load_iris()
    changed["target"] = changed["target"][::-1].copy()
    assert hash_value(changed) != hash_value(bunch)
