"""Aliasing between a cached cell's variables and the rest of the notebook.

In a plain notebook ``v = g.reshape(2, 3)`` makes ``v`` a view of ``g``, and
``v[0, 0] = 99`` then changes ``g`` too; ``h = g`` binds one object to two names.
A hit that restored independent copies would silently break that sharing.
:func:`plan` decides, after a miss, how each stored variable comes back:

* a variable the cell changed in place (same object before and after) is
  restored *into* the existing object (``arr[...] = stored``, ``lst[:] = stored``),
  so every alias of it sees the change, as when the cell runs;
* a new name bound to an input's object (``h = g``) is bound to that input again;
* a numpy view of an input or of another output (``v = g.reshape(2, 3)``) is
  rebuilt as a view of the same memory;
* outputs that are the same object (``x = y = []``) stay one object (one pickle);
* any other sharing with a notebook variable cannot be restored: the entry is not
  stored, and one line says which variables share what.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["AliasPlan", "fits_in_place", "plan", "rebuild_view", "restore_in_place"]

_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, range, frozenset)


class AliasPlan:
    """How the outputs of one cell are restored on a hit (a plain class: cheap to define)."""

    __slots__ = ("aliases", "inplace", "problem", "views")

    def __init__(self) -> None:
        self.inplace: list[str] = []
        self.aliases: dict[str, str] = {}
        self.views: dict[str, list[Any]] = {}
        #: Why the cell cannot be cached, when its sharing cannot be restored.
        self.problem = ""


def _shareable(value: Any) -> bool:
    """Can another variable observe a change to ``value`` (a mutable data object)?"""
    if isinstance(value, (*_IMMUTABLE, types.ModuleType, types.FunctionType, type)):
        return False
    if isinstance(value, tuple):
        return any(_shareable(v) for v in value)
    return not callable(value) or hasattr(value, "__dict__")


def _arrays(value: Any) -> list[Any]:
    """The numpy arrays holding ``value``'s data (an array, or a pandas object's columns)."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return []
    if isinstance(value, numpy.ndarray):
        return [value]
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series)):
        try:
            if isinstance(value, pandas.Series):
                return [a for a in [getattr(value._values, "_ndarray", value._values)] if isinstance(a, numpy.ndarray)]
            return [b.values for b in value._mgr.blocks if isinstance(b.values, numpy.ndarray)]
        except Exception:
            return []
    return []


def _copy_on_write() -> bool:
    """Is pandas Copy-on-Write on (always, from pandas 3)?  Then no write to one pandas object
    shows in another that shares its memory: their sharing is invisible to the notebook."""
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return False
    try:
        if int(str(pandas.__version__).split(".")[0]) >= 3:
            return True
        return pandas.options.mode.copy_on_write is True  # pandas 2's opt-in ("warn" is not on)
    except Exception:
        return False


def _is_pandas(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series))


def _share_memory(a: Any, b: Any) -> bool:
    """Can a write through ``a`` change what ``b`` holds (or the reverse)?

    Two pandas objects under Copy-on-Write cannot; two arrays can only if they share an element
    (``x, y = points.T`` interleave in memory but never overlap): the bounds test first (cheap),
    then the exact one, bounded (too hard to decide counts as sharing).
    """
    import numpy

    if _is_pandas(a) and _is_pandas(b) and _copy_on_write():
        return False
    for x in _arrays(a):
        for y in _arrays(b):
            if x.size and y.size and numpy.may_share_memory(x, y):
                try:
                    if numpy.shares_memory(x, y, max_work=100_000):  # type: ignore[arg-type]  # bounded effort (runtime accepts)
                        return True
                except Exception:  # TooHardError: cannot be decided cheaply, so assume they do
                    return True
    return False


def can_restore_in_place(value: Any) -> bool:
    """Does :func:`restore_in_place` know how to write a stored copy into ``value``?"""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        return bool(value.flags.writeable) and not value.dtype.hasobject
    return isinstance(value, (list, dict, set, bytearray))


def fits_in_place(target: Any, stored: Any) -> bool:
    """Can :func:`restore_in_place` write ``stored`` into ``target``?"""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(target, numpy.ndarray):
        return (
            isinstance(stored, numpy.ndarray)
            and stored.shape == target.shape
            and stored.dtype == target.dtype
            and bool(target.flags.writeable)
        )
    return type(target) is type(stored) and isinstance(target, (list, bytearray, dict, set))


def restore_in_place(target: Any, stored: Any) -> bool:
    """Write ``stored``'s content into ``target``; False if their kinds do not match."""
    if not fits_in_place(target, stored):
        return False
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(target, numpy.ndarray):
        target[...] = stored
        return True
    if isinstance(target, (list, bytearray)):
        target[:] = stored
    elif isinstance(target, (dict, set)):
        target.clear()
        target.update(stored)
    return True


def _view_spec(view: Any, base_name: str, base: Any) -> list[Any] | None:
    """``[base, byte offset, shape, strides, dtype]`` if ``view`` lies inside contiguous ``base``."""
    import numpy

    if not isinstance(base, numpy.ndarray) or not base.flags.c_contiguous or base.dtype.hasobject:
        return None
    low, high = _byte_bounds(view)
    base_low, base_high = _byte_bounds(base)
    if low < base_low or high > base_high:
        return None
    offset = view.__array_interface__["data"][0] - base_low
    return [base_name, int(offset), list(view.shape), list(view.strides), view.dtype.str]


def _byte_bounds(array: Any) -> tuple[int, int]:
    """The lowest and one-past-highest byte addresses an array touches (numpy 1 and 2)."""
    import numpy

    utils = getattr(numpy.lib, "array_utils", None)
    bounds = getattr(utils, "byte_bounds", None) or getattr(numpy, "byte_bounds")  # noqa: B009
    low, high = bounds(array)
    return int(low), int(high)


def rebuild_view(base: Any, spec: list[Any]) -> Any:
    """A numpy view of ``base`` as described by :func:`_view_spec` (ValueError if it cannot be)."""
    import numpy

    _name, offset, shape, strides, dtype = spec
    if not isinstance(base, numpy.ndarray) or not base.flags.c_contiguous:
        raise ValueError("the array it was a view of is no longer contiguous")
    raw = base.reshape(-1).view(numpy.uint8)
    return numpy.ndarray(tuple(shape), numpy.dtype(dtype), buffer=raw, offset=offset, strides=tuple(strides))


def plan(
    ns: dict[str, Any],
    values: dict[str, Any],
    before: dict[str, Any],
    inputs: set[str],
    is_internal: Any,
) -> AliasPlan:
    """How to restore ``values`` (the outputs about to be stored) with their sharing."""
    result = AliasPlan()
    variables = {n: v for n, v in ns.items() if not is_internal(n) and not n.startswith("_") and _shareable(v)}
    # Objects changed in place are restored into the live object: a name bound to one of
    # them is bound to that object again, never to a second, unpickled copy.
    restored_in_place = {
        n for n, v in values.items() if _shareable(v) and before.get(n) is v and can_restore_in_place(v)
    }
    for name, value in values.items():
        if not _shareable(value):
            continue
        if before.get(name) is value:
            # The same object as before the cell: changed in place (or untouched).
            if can_restore_in_place(value):
                result.inplace.append(name)
                continue
            sharers = [o for o, v in variables.items() if o != name and (v is value or _share_memory(v, value))]
            if sharers:
                result.problem = (
                    f"{name!r} was changed in place and is shared with {sharers[0]!r}, and a "
                    f"{type(value).__name__} cannot be restored in place"
                )
                return result
            continue
        same = [o for o, v in variables.items() if o != name and v is value]
        if same:
            other = same[0]
            if other in restored_in_place:
                result.aliases[name] = other
                continue
            if other in values:
                continue  # both stored: one pickle keeps them one object
            if other in inputs:
                result.aliases[name] = other
                continue
            result.problem = f"{name!r} is the same object as {other!r}, which the cell does not read"
            return result
        sharers = [o for o, v in variables.items() if o != name and _share_memory(v, value)]
        if getattr(value, "base", None) is None:
            # Owns its memory: outputs that are views of it are rebuilt from it.
            sharers = [o for o in sharers if o not in values]
        for other in sharers:
            spec = None
            if other in values or other in inputs:
                numpy = sys.modules["numpy"]
                spec = _view_spec(value, other, variables[other]) if isinstance(value, numpy.ndarray) else None
            if spec is None:
                result.problem = f"{name!r} shares memory with {other!r} (a view), which a hit cannot restore"
                return result
            result.views[name] = spec
            break
        else:
            contained = _contained_variable(value, {o: v for o, v in variables.items() if o not in values}, name)
            if contained:
                result.problem = f"{name!r} holds the object bound to {contained!r}, which a hit cannot restore"
                return result
    return result


def _contained_variable(value: Any, variables: dict[str, Any], name: str) -> str:
    """A notebook variable whose (mutable) object sits directly inside container ``value``."""
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (list, tuple, set)):
        items = list(value)
    else:
        return ""
    ids = {id(v): o for o, v in variables.items() if o != name}
    for item in items[:10_000]:
        if _shareable(item) and id(item) in ids:
            return ids[id(item)]
    return ""
