"""What happened to cached cells in this kernel (for ``%sci_cache``, ``why`` and tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SESSION", "CellRun"]


@dataclass
class CellRun:
    """What happened to one cached cell."""

    key: str = ""
    status: str = "miss"  # hit | miss | uncached
    layer: str = ""
    names: list[str] = field(default_factory=list)
    result: Any = None
    #: Why the cell missed or was not cached (one line), '' when it hit or nothing is known.
    reason: str = ""
    #: Fingerprints of the files and listings the run read (the safety net), by path.
    files: dict[str, list[Any]] = field(default_factory=dict)
    #: The result was already shown through the displayhook (the magic then returns None).
    shown: bool = False


class _Session:
    """Hits and misses of this kernel, and the last run of each cell (by name or code)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.last: CellRun | None = None
        #: The identity of the last run of each cell name ('' for unnamed cells), for ``%sci_cache why``.
        self.why: dict[str, list[str]] = {}
        #: The key whose hit the store's note already records, by cell identity (warm hits skip the note).
        self.noted: dict[str, str] = {}


SESSION = _Session()
