"""Opening, listing, inspecting, clearing and counting the cell cache (``%sci_cache`` and ``jupyter sci cache``).

Lives in core so the command line reaches the cache without importing the kernel.
Views are returned as :class:`TableView` (header, rows, title); the magic renders
them as HTML tables, the command line as text (:meth:`TableView.text`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .layered import LayeredStore, get_disk_store, get_memory_store, get_redis_store
from .store import BackendUnavailable, EntryInfo

__all__ = ["TableView", "clear", "entries", "info_view", "list_view", "open_store", "stats", "stats_view"]


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def open_store(backend: str | None = None, warn: Callable[[str], None] = _warn) -> LayeredStore:
    """The store of a cached cell given ``--backend`` (default ``cache.backend``).

    ValueError for ``redis`` without ``cache.redis_url``.
    """
    from ..config import get_config

    cfg = get_config().cache
    backend = backend or cfg.backend
    if backend == "memory":
        return LayeredStore(get_memory_store(cfg.memory_max_items), None, warn)
    if backend == "redis" and not cfg.redis_url:
        raise ValueError("--backend redis needs cache.redis_url (e.g. %sci_config cache.redis_url=redis://host:6379/0)")
    local = get_disk_store(cfg.dir, cfg.size_limit_bytes)
    remote = None
    if cfg.redis_url:
        try:
            remote = get_redis_store(cfg.redis_url, cfg.redis_timeout_seconds, cfg.redis_signing_key)
        except ImportError:
            warn(
                "sci_ext warning: cache.redis_url is set but the redis package is missing"
                " (pip install 'sci_ext[redis]'); using the local cache only"
            )
    return LayeredStore(local, remote, warn)


@dataclass
class TableView:
    """A table to show: a header, rows of cells, a title."""

    header: list[str]
    rows: list[list[Any]]
    title: str = ""

    def text(self) -> str:
        """The table as aligned plain text (the command line)."""
        cells = [[str(c) for c in row] for row in self.rows]
        widths = [max(len(r[i]) for r in [self.header, *cells]) for i in range(len(self.header))]
        lines = [self.title] if self.title else []
        lines.append("  ".join(h.ljust(w) for h, w in zip(self.header, widths, strict=True)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
        return "\n".join(lines)


def _store(backend: str | None) -> LayeredStore:
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


def list_view(backend: str | None = None) -> TableView:
    """A table of entries: name, key prefix, size, created, hits."""
    rows = [[e.name or "-", e.key[:12], _size(e.size), _when(e.created), e.hits, e.backend] for e in entries(backend)]
    return TableView(
        ["name", "key", "size", "created", "hits", "backend"], rows, title=f"sci_ext cache: {len(rows)} entries"
    )


def _match(target: str, backend: str | None) -> list[EntryInfo]:
    return [e for e in entries(backend) if e.name == target or e.key.startswith(target.lower())]


def info_view(target: str, backend: str | None = None) -> TableView:
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
    return TableView(["field", "value"], rows, title=f"sci_ext cache entry {target}")


def clear(target: str | None, everything: bool, backend: str | None = None) -> str:
    """Remove the entries named/keyed ``target``, or every entry and counter with ``everything``."""
    from . import stats as events

    store = _store(backend)
    if everything:
        count = store.local.clear()
        if store.remote is not None:
            try:
                for info in store.remote.entries():
                    store.remote.delete(info.key)
            except BackendUnavailable as exc:
                store.warn(f"sci_ext warning: {exc}; cleared the local cache only")
        events.reset_counters()
        return f"cleared {count} entries"
    if not target:
        raise LookupError("clear needs a NAME or KEY, or --all")
    found = _match(target, backend)
    if not found:
        raise LookupError(f"no cache entry named or keyed {target!r}")
    for info in found:
        store.delete(info.key)
    return f"cleared {len(found)} entr{'y' if len(found) == 1 else 'ies'} ({target})"


def stats(backend: str | None = None, session: tuple[int, int] | None = None) -> dict[str, Any]:
    """Hits, misses, ratio, entries and bytes of the store (``session``: this kernel's hits and misses)."""
    store = _store(backend)
    out: dict[str, Any] = {"backend": store.backend}
    out.update(store.local.counters())
    out["bytes"] = store.local.volume()
    directory = getattr(store.local, "directory", None)
    if directory is not None:
        out["directory"] = str(directory)
    out["entries"] = len(store.local.entries())
    if session is not None:
        out["session_hits"], out["session_misses"] = session
    total = out["hits"] + out["misses"]
    out["ratio"] = out["hits"] / total if total else 0.0
    return out


def stats_view(backend: str | None = None, session: tuple[int, int] | None = None) -> TableView:
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
    if session is not None:
        rows.insert(3, ["this kernel", f"{data['session_hits']} hits, {data['session_misses']} misses"])
    return TableView(["stat", "value"], rows, title="sci_ext cache stats")
