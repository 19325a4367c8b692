"""Listing, inspecting, clearing and counting cache entries (``%sci_cache`` and ``jupyter sci cache``)."""

from __future__ import annotations

import time
from typing import Any

from .._table import Table
from ..core.cache.layered import LayeredStore
from ..core.cache.store import BackendUnavailable, DiskStore, EntryInfo

__all__ = ["clear", "entries", "info_table", "list_table", "stats", "stats_table"]


def _store(backend: str | None) -> LayeredStore:
    from .cached_cell import open_store

    try:
        return open_store(backend)
    except ValueError as exc:
        raise LookupError(str(exc)) from None


def entries(backend: str | None = None) -> list[EntryInfo]:
    """Every entry of the local store (and Redis when configured), newest first."""
    store = _store(backend)
    found: dict[str, EntryInfo] = {e.key: e for e in store.local.entries()}
    if store.remote is not None:
        try:
            for info in store.remote.entries():
                found.setdefault(info.key, info)
        except BackendUnavailable as exc:
            store.warn(f"sci_ext warning: {exc}; listing the local cache only")
    return sorted(found.values(), key=lambda e: e.created, reverse=True)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"  # pragma: no cover


def list_table(backend: str | None = None) -> Table:
    """A table of entries: name, key prefix, size, created, hits."""
    rows = [[e.name or "-", e.key[:12], _size(e.size), _when(e.created), e.hits, e.backend] for e in entries(backend)]
    return Table(
        ["name", "key", "size", "created", "hits", "backend"], rows, title=f"sci_ext cache: {len(rows)} entries"
    )


def _match(target: str, backend: str | None) -> list[EntryInfo]:
    return [e for e in entries(backend) if e.name == target or e.key.startswith(target.lower())]


def info_table(target: str, backend: str | None = None) -> Table:
    """Details of the entries named ``target`` or whose key starts with it."""
    found = _match(target, backend)
    if not found:
        raise LookupError(f"no cache entry named or keyed {target!r}")
    rows: list[list[Any]] = []
    for e in found:
        rows += [
            ["key", e.key],
            ["name", e.name or "-"],
            ["kind", e.kind],
            ["size", f"{_size(e.size)} ({e.size} bytes)"],
            ["created", _when(e.created)],
            ["expires", _when(e.expires)],
            ["hits", e.hits],
            ["backend", e.backend],
        ]
    return Table(["field", "value"], rows, title=f"sci_ext cache entry {target}")


def clear(target: str | None, everything: bool, backend: str | None = None) -> str:
    """Remove the entries named/keyed ``target``, or every entry with ``everything``."""
    from ..core.cache import stats as events

    store = _store(backend)
    if everything:
        count = 0
        if isinstance(store.local, DiskStore):
            count = len([e for e in store.local.entries()])
            store.local.clear()
        else:
            count = store.local.clear()
        if store.remote is not None:
            try:
                for info in store.remote.entries():
                    store.remote.delete(info.key)
            except BackendUnavailable as exc:
                store.warn(f"sci_ext warning: {exc}; cleared the local cache only")
        events.reset_counters()
        from .cached_cell import SESSION

        SESSION.hits = SESSION.misses = 0
        return f"cleared {count} entries"
    if not target:
        raise LookupError("clear needs a NAME or KEY, or --all")
    found = _match(target, backend)
    if not found:
        raise LookupError(f"no cache entry named or keyed {target!r}")
    for info in found:
        store.delete(info.key)
    return f"cleared {len(found)} entr{'y' if len(found) == 1 else 'ies'} ({target})"


def stats(backend: str | None = None, session: bool = False) -> dict[str, Any]:
    """Hits, misses, ratio, entries and bytes (machine-wide for disk, plus this kernel)."""
    store = _store(backend)
    out: dict[str, Any] = {"backend": store.backend}
    if isinstance(store.local, DiskStore):
        counters = store.local.counters()
        out.update(counters)
        out["bytes"] = store.local.volume()
        out["directory"] = str(store.local.directory)
    else:
        out.update({"hits": 0, "misses": 0, "bytes": sum(e.size for e in store.local.entries())})
    out["entries"] = len(store.local.entries())
    if session:
        from .cached_cell import SESSION

        out["session_hits"] = SESSION.hits
        out["session_misses"] = SESSION.misses
        if not isinstance(store.local, DiskStore):
            out["hits"], out["misses"] = SESSION.hits, SESSION.misses
    total = out["hits"] + out["misses"]
    out["ratio"] = out["hits"] / total if total else 0.0
    return out


def stats_table(backend: str | None = None, session: bool = False) -> Table:
    """:func:`stats` as a table."""
    data = stats(backend, session)
    rows = [
        ["hits", data["hits"]],
        ["misses", data["misses"]],
        ["ratio", f"{data['ratio']:.2f}"],
        ["entries", data["entries"]],
        ["bytes", f"{data['bytes']} ({_size(data['bytes'])})"],
        ["backend", data["backend"]],
    ]
    if session:
        rows.insert(3, ["this kernel", f"{data['session_hits']} hits, {data['session_misses']} misses"])
    return Table(["stat", "value"], rows, title="sci_ext cache stats")
