"""Kernel-side probe of the differential harness (imported inside the kernel under test).

The harness asks for :func:`snapshot` after every cell through the execute request's
``user_expressions`` (evaluated after the cell, outside its namespace, without touching
``Out``/``_`` or the history).  A snapshot holds:

* ``state``: a digest of every plain-data global of the notebook (numbers, strings, numpy
  arrays, pandas objects, containers of those, scikit-learn estimators and instances of
  notebook classes through their ``__dict__``) and of the global ``random``/``numpy.random``
  states.  Digests read data only: no user method (``__repr__``, ``__getstate__``,
  ``get_params``...) is ever called, so the probe cannot change what a cell computes.
* ``events``: the cell-cache events (``sci_ext.core.events.channel("cache")``) since the
  previous snapshot, once :func:`install` subscribed to them (cached runs only).

The module is deliberately stdlib-only at import and keeps nothing in the user namespace.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Any

_events: list[dict[str, Any]] = []
_installed = False
_MAX_ITEMS = 2000
_MAX_DEPTH = 4


def install() -> str:
    """Subscribe to sci_ext's cache events (idempotent); returns ``"ok"`` or why not."""
    global _installed
    if _installed:
        return "ok"
    try:
        from sci_ext.core.events import channel
    except Exception as exc:  # the harness reports it; plain runs never call this
        return f"no sci_ext events: {exc}"
    if os.environ.get("SCI_DIFF_SAFETY_NET") == "off":
        # Only to measure what the net costs on the corpus (bench_differential.py --net-cost).
        from sci_ext.kernel.cellcache import safety

        safety.ENABLED = False

    def on_event(event: Any) -> None:
        _events.append(
            {
                "source": str(getattr(event, "source", "")),
                "layer": str(getattr(event, "layer", "")),
                "result": str(getattr(event, "result", "")),
                "name": str(getattr(event, "name", "")),
            }
        )

    channel("cache").add(on_event)
    _installed = True
    return "ok"


def _h(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=10).hexdigest()


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def digest(value: Any, depth: int = 0) -> str | None:
    """A content digest of ``value`` (None: not plain data; the probe leaves it out)."""
    if depth > _MAX_DEPTH:
        return "deep"
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return _h(repr(value).encode())
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                items = [digest(v, depth + 1) for v in value.ravel()[:_MAX_ITEMS]]
                return _h(f"ndarray-object{value.shape}{items}".encode())
            return _h(f"ndarray{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).tobytes())
        if isinstance(value, np.generic):
            return _h(f"{value.dtype}{value!r}".encode())
        if isinstance(value, np.random.RandomState):
            return _state_digest(value.get_state())
        if isinstance(value, np.random.Generator):
            return _h(json.dumps(value.bit_generator.state, sort_keys=True, default=str).encode())
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
        return _pandas_digest(pd, value)
    if isinstance(value, (list, tuple)):
        items = [digest(v, depth + 1) for v in value[:_MAX_ITEMS]]
        return _h(f"{type(value).__name__}{len(value)}{items}".encode())
    if isinstance(value, dict):
        pairs = sorted((repr(k), digest(v, depth + 1)) for k, v in list(value.items())[:_MAX_ITEMS])
        return _h(f"dict{len(value)}{pairs}".encode())
    if isinstance(value, (set, frozenset)):
        items = sorted(str(digest(v, depth + 1)) for v in list(value)[:_MAX_ITEMS])
        return _h(f"set{len(value)}{items}".encode())
    module = type(value).__module__ or ""
    if module.startswith("sklearn") or module == "__main__":
        try:
            attrs = object.__getattribute__(value, "__dict__")
        except Exception:
            return None
        if not isinstance(attrs, dict):
            return None
        pairs = sorted((k, digest(v, depth + 1)) for k, v in attrs.items())
        return _h(f"{_type_name(value)}{pairs}".encode())
    return None


def _pandas_digest(pd: Any, value: Any) -> str:
    parts = [type(value).__name__, str(value.shape)]
    if isinstance(value, pd.DataFrame):
        parts.append(repr(list(value.columns)))
        parts.append(repr([str(t) for t in value.dtypes]))
    else:
        parts.append(str(value.dtype))
    try:
        if isinstance(value, pd.Index):
            hashed = pd.util.hash_pandas_object(value).to_numpy()
        else:
            hashed = pd.util.hash_pandas_object(value, index=True).to_numpy()
        return _h("".join(parts).encode() + hashed.tobytes())
    except Exception:  # unhashable cells (lists): shape and dtypes only
        return _h(("".join(parts) + "unhashable").encode())


def _state_digest(state: Any) -> str:
    np = sys.modules.get("numpy")
    parts = []
    for item in state:
        if np is not None and isinstance(item, np.ndarray):
            parts.append(_h(item.tobytes()))
        else:
            parts.append(repr(item))
    return _h(repr(parts).encode())


def state() -> dict[str, str]:
    """Digests of the notebook's plain-data globals and of the global random states."""
    ip = sys.modules.get("IPython")
    shell = ip.get_ipython() if ip is not None else None
    if shell is None:
        return {}
    hidden = getattr(shell, "user_ns_hidden", {})
    out: dict[str, str] = {}
    for name, value in list(shell.user_ns.items()):
        if name.startswith("_") or name in hidden or name in ("In", "Out", "exit", "quit", "get_ipython"):
            continue
        try:
            d = digest(value)
        except Exception as exc:  # a digest must never break the run
            d = f"error:{type(exc).__name__}"
        if d is not None:
            out[name] = d
    random = sys.modules.get("random")
    if random is not None:
        out["<random>"] = _h(repr(random.getstate()).encode())
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            out["<numpy.random>"] = _state_digest(np.random.get_state())
        except Exception:
            pass
    return out


def snapshot() -> str:
    """JSON of ``{"state": ..., "events": ..., "cpu": ..., "cpu_after": ...}``; the events are drained.

    ``cpu`` is the kernel's process CPU time before the snapshot is taken, ``cpu_after`` after
    it: a cell's CPU time is its ``cpu`` minus the previous cell's ``cpu_after``.
    """
    cpu = time.process_time()
    events = list(_events)
    del _events[: len(events)]
    found = state()
    return json.dumps({"state": found, "events": events, "cpu": cpu, "cpu_after": time.process_time()})
