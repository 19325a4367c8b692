"""Canonical parts of library values, so a key survives a store/restore round trip.

A pickle stream is not canonical: pandas writes its internal block layout (a
transposed or freshly built frame differs from the same frame restored), and
pickle's memo depends on which objects happen to be shared.  So a key computed
from a restored value differed from the key of the value it was stored from,
and every downstream cached cell missed once after each restart.

:func:`pandas_parts` breaks pandas objects into what they mean (type, dtypes,
index, labels, column values, attrs); :func:`reduce_state` gives the
``(class, args, state)`` that pickle would write for ordinary objects
(scikit-learn estimators, dataclasses, objects with ``__getstate__``), which
the hasher then walks by content, like any container.
"""

from __future__ import annotations

import copyreg
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["is_pandas", "pandas_parts", "reduce_state"]

_NEWOBJ = tuple(
    getattr(copyreg, name) for name in ("__newobj__", "__newobj_ex__", "_reconstructor") if hasattr(copyreg, name)
)


def is_pandas(value: Any) -> bool:
    """Is ``value`` a pandas DataFrame, Series or Index (pandas already imported)?"""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series, pandas.Index))


def _array_parts(values: Any, label: str) -> Iterator[tuple[str, Any]]:
    """The content of a column's values: numpy arrays as they are, extension arrays by their parts."""
    import numpy
    import pandas

    if isinstance(values, numpy.ndarray):
        yield label, values
        return
    yield f"{label} dtype", str(values.dtype)
    if isinstance(values, pandas.Categorical):
        yield f"{label} ordered", bool(values.ordered)
        yield f"{label} categories", values.categories
        yield f"{label} codes", numpy.asarray(values.codes)
        return
    data, mask = getattr(values, "_data", None), getattr(values, "_mask", None)
    if isinstance(data, numpy.ndarray) and isinstance(mask, numpy.ndarray):  # nullable Int64, boolean, ...
        yield f"{label} mask", mask
        yield f"{label} data", numpy.where(mask, numpy.zeros((), data.dtype), data)
        return
    backing = getattr(values, "_ndarray", None)  # datetime, timedelta, period, numpy-backed strings
    if isinstance(backing, numpy.ndarray):
        yield f"{label} values", backing
        return
    yield f"{label} values", numpy.asarray(values, dtype=object)


def pandas_parts(value: Any, label: str) -> Iterator[tuple[str, Any]]:
    """``(label, part)`` pairs that identify a DataFrame, Series or Index by content."""
    import pandas

    kind = type(value)
    yield "type", f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(value, pandas.Index):
        yield f"{label} names", list(value.names)
        if isinstance(value, pandas.MultiIndex):
            for i, (level, codes) in enumerate(zip(value.levels, value.codes, strict=True)):
                yield f"{label} level {i}", level
                yield f"{label} codes {i}", codes
            return
        if isinstance(value, pandas.RangeIndex):
            yield f"{label} range", (value.start, value.stop, value.step)
            return
        freq = getattr(value, "freqstr", None)
        yield f"{label} freq", freq if isinstance(freq, str) else None
        yield from _array_parts(value._values, f"{label} values")
        return
    yield f"{label} attrs", dict(value.attrs)
    for name in getattr(value, "_metadata", ()):  # a subclass's own fields (GeoDataFrame's crs, ...)
        yield f"{label} metadata {name}", getattr(value, name, None)
    yield f"{label} index", value.index
    if isinstance(value, pandas.Series):
        yield f"{label} name", value.name
        yield from _array_parts(value._values, f"{label} values")
        return
    yield f"{label} columns", value.columns
    for i in range(value.shape[1]):
        # Column by column: the block layout (consolidated, transposed, split) is not content.
        yield from _array_parts(value.iloc[:, i]._values, f"{label} column {i}")


def reduce_state(value: Any) -> tuple[type, tuple[Any, ...], dict[str, Any]] | None:
    """``(class, constructor args, state dict)`` when pickle stores ``value`` as a class plus a dict.

    That covers scikit-learn estimators, dataclasses and most user objects with a
    ``__getstate__``.  None for anything else (custom ``__reduce__``, list or dict
    items, a state that is not a dict): those keep being hashed by their pickle stream.
    """
    try:
        reduced = value.__reduce_ex__(5)
    except Exception:
        return None
    if not isinstance(reduced, tuple) or len(reduced) < 3 or reduced[0] not in _NEWOBJ:
        return None
    if any(part is not None for part in reduced[3:]):
        return None
    state = reduced[2]
    if isinstance(state, tuple) and len(state) == 2 and state[0] is None and isinstance(state[1], dict):
        state = state[1]  # slots only
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        return None
    args = reduced[1] if isinstance(reduced[1], tuple) else ()
    return type(value), args[1:] if args and args[0] is type(value) else args, state
