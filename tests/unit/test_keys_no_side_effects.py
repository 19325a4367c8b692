"""Keying an input never changes it, never calls its methods, and stays linear in its size (issue 25)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sci_ext.core.cache.keys import ValueHasher, hash_value


def test_hashing_a_masked_array_leaves_its_mask_alone():
    """``MaskedArray.view`` reshaped the mask it shares: GridSearchCV's cv_results_ then broke."""
    data = np.ma.MaskedArray(np.arange(3, dtype=object), mask=[False, True, False])
    column = data[:]  # shares the mask, as GridSearchCV's param_ columns do
    before = (column.mask.shape, pickle.dumps(column))
    hash_value({"param_alpha": column})
    assert (column.mask.shape, pickle.dumps(column)) == before
    numeric = np.ma.MaskedArray(np.arange(6.0), mask=[0, 1, 0, 0, 0, 1])
    first = hash_value(numeric)
    assert numeric.mask.shape == (6,) and hash_value(numeric) == first
    numeric.mask[0] = True  # the mask is part of the content
    assert hash_value(numeric) != first


class Counted:
    """An object whose pickling hooks count their calls (and change state, as some do)."""

    calls = 0

    def __init__(self, value):
        self.value = value

    def __getstate__(self):
        Counted.calls += 1
        self.value = "changed by __getstate__"
        return dict(vars(self))

    def __setstate__(self, state):
        vars(self).update(state)


def test_hashing_an_object_does_not_call_its_getstate():
    Counted.calls = 0
    obj = Counted([1, 2, 3])
    first = hash_value(obj)
    assert Counted.calls == 0 and obj.value == [1, 2, 3]
    obj.value.append(4)
    assert hash_value(obj) != first and Counted.calls == 0


def test_a_fitted_estimator_is_keyed_without_calling_its_methods(monkeypatch):
    from sklearn.base import BaseEstimator
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=0.5).fit(np.arange(10.0).reshape(5, 2), np.arange(5.0))
    called = []
    for hook in ("__getstate__", "get_params", "__repr__"):
        original = getattr(BaseEstimator, hook)
        monkeypatch.setattr(
            BaseEstimator, hook, lambda self, *a, _h=hook, _o=original, **k: called.append(_h) or _o(self, *a, **k)
        )
    hash_value(model)
    assert called == []


class Node:
    def __init__(self, left, right):
        self.left = left
        self.right = right


def _dag(depth: int, leaf: object) -> Node:
    node = Node(leaf, leaf)
    for _ in range(depth):
        node = Node(node, node)  # every level shared twice: 2**depth paths, depth + 1 objects
    return node


@pytest.mark.timeout(60)
def test_an_object_graph_with_shared_nodes_is_walked_once_per_node():
    """A FuncAnimation's figure graph made %%cached spend minutes before a cell that fails in 0.2 s."""
    hasher = ValueHasher()
    hasher.update(_dag(60, [1]), "graph")
    assert hasher._count < 200
    assert hash_value(_dag(60, [1])) == hasher.digest()
    assert hash_value(_dag(60, [2])) != hasher.digest()


def test_sharing_inside_a_value_is_content():
    shared = [1]
    assert hash_value([shared, shared]) != hash_value([[1], [1]])
    assert hash_value([shared, shared]) == hash_value(pickle.loads(pickle.dumps([shared, shared])))
