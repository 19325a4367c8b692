"""Why a cached cell ran: compare this run's key parts with the last stored run of the same cell.

Each run of a cell (named, or identified by its code) leaves a small note in the
store: the fingerprint of every key part (code, each input by name, module
versions, RNG state, environment, files) and how many runs in a row each part
changed.  A miss of a cell with a note prints one line naming what differs; an
input that changed on three misses in a row is named with ``--ignore NAME``.
``%sci_cache why NAME`` shows the whole comparison.  A corrupt note is a warning
and a fresh start, never an exception.
"""

from __future__ import annotations

import json
from typing import Any

from ...core.cache.keys import new_hasher

__all__ = ["Comparison", "compare", "describe", "load_note", "save_note", "why_rows"]

#: Misses in a row, each because the same input changed, before ``--ignore`` is suggested.
STREAK = 3


def note_key(identity: str) -> str:
    """The store name of a cell's note."""
    hasher = new_hasher()
    hasher.update(identity.encode("utf-8", "surrogatepass"))
    return f"why:{hasher.hexdigest()}"


def load_note(store: Any, identity: str, warn: Any) -> dict[str, Any] | None:
    """The note of the cell's last run, or None (a corrupt note warns once and is dropped)."""
    try:
        text = store.get_note(note_key(identity))
    except Exception as exc:
        warn(f"sci_ext warning: the cache's run notes cannot be read ({type(exc).__name__}: {exc}); not explaining")
        return None
    if text is None:
        return None
    try:
        note = json.loads(text)
        if not isinstance(note, dict) or not isinstance(note.get("parts"), dict):
            raise ValueError("not a note")
        note.setdefault("streak", {})
        return note
    except (ValueError, TypeError) as exc:
        warn(f"sci_ext warning: the cache's run note of this cell is corrupt ({exc}); starting a new one")
        return None


def save_note(store: Any, identity: str, note: dict[str, Any]) -> None:
    """Store the note (best effort: a note never fails a cell)."""
    try:
        store.set_note(note_key(identity), json.dumps(note))
    except Exception:  # noqa: S110  # nosec B110  # explanations are best effort
        pass


def describe(part: str) -> str:
    """A key part as a user reads it."""
    if part.startswith("input "):
        return part
    if part.startswith("<dynamic> "):
        return f"input {part[10:]} (read through globals()/eval)"
    if part.startswith("<attribute> "):
        return f"module attribute {part[12:]}"
    if part.startswith("module "):
        return f"module {part[7:]}'s version"
    if part.startswith("file "):
        return part
    if part.startswith("files "):
        return f"--files {part[6:]}"
    if part.startswith("environment"):
        return "environment variable " + part[12:] if part != "environment" else "the environment"
    return part


class Comparison:
    """This run's parts against the note's: what changed, what did not."""

    def __init__(self, old: dict[str, str], new: dict[str, str]) -> None:
        self.old = old
        self.new = new
        self.changed = sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))
        # Builtins and absent names are not worth naming as "unchanged".
        self.same = sorted(p for p in new if old.get(p) == new[p] and not new[p].startswith("<"))


#: Files a note lists one by one; past it, one part stands for all of them (a note is written on every miss).
NOTED_FILES = 20


def file_parts(files: dict[str, list[Any]]) -> dict[str, str]:
    """The note's parts for the files a run read: ``file PATH`` each, or one ``files read`` part.

    Past :data:`NOTED_FILES` the part is only their number: which file changed is named by
    the lookup (the entry holds every fingerprint), and a note is written on every miss.
    """
    if len(files) <= NOTED_FILES:
        return {f"file {path}": ":".join(str(x) for x in fingerprint) for path, fingerprint in files.items()}
    return {"files read": f"{len(files)} files"}


def _read_files(part: str) -> bool:
    return part == "files read"


def compare(note: dict[str, Any], parts: dict[str, str]) -> Comparison:
    """Compare the parts of this run with the note's.

    The files the stored run read are not parts of this run's plan (a changed file is named
    by the lookup, before this); they are left out rather than reported as changed.
    """
    noted = note.get("parts", {})
    old = {p: d for p, d in noted.items() if p in parts or not (p.startswith("file ") or _read_files(p))}
    return Comparison(old, parts)


def _names(parts: list[str]) -> str:
    shown = [p[6:] for p in parts if p.startswith("input ")][:4]
    if not shown:
        return ""
    text = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return f" ({text} unchanged)"


def helper_globals(ns: dict[str, Any], inputs: list[str], main: set[str], ignore: list[str]) -> dict[str, str]:
    """``{"input G": digest}`` of the data globals the notebook functions among ``inputs`` read.

    A function's key covers the globals it reads; naming the global that changed (the token
    tracker ``ask`` updates) is what lets a user choose ``--ignore G``.  Computed on a miss only.
    """
    import types

    from ...core.cache.keys import UnhashableInput, ValueHasher

    found: dict[str, str] = {}
    for name in inputs:
        func = ns.get(name)
        if not isinstance(func, types.FunctionType) or func.__module__ not in main:
            continue
        for global_name in sorted(_code_names(func.__code__)):
            value = func.__globals__.get(global_name)
            if global_name in ignore or global_name in inputs or f"input {global_name}" in found:
                continue
            if value is None or isinstance(value, (types.FunctionType, types.ModuleType, type)):
                continue
            hasher = ValueHasher(main, ignore)
            try:
                hasher.update(value, global_name)
            except UnhashableInput:
                continue
            found[f"input {global_name}"] = hasher.digest()
    return found


def _code_names(code: Any) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _code_names(const)
    return names


def explain(label: str, comparison: Comparison, streak: dict[str, int], prefer: frozenset[str] = frozenset()) -> str:
    """The one line that says why the cell ran (``''`` when nothing differs)."""
    changed = comparison.changed
    if not changed:
        return ""
    head = f"[sci_ext] {label} ran: "
    if "code" in changed:
        return head + "its code changed since the stored run"
    for which, name in (("numpy", "numpy random"), ("random", "random module's")):
        if f"<rng> {which}" in changed and len(changed) == 1:
            return head + (
                f"the global {name} state is not seeded, so this cell runs after every restart (seed it, or --inputs)"
            )
    first = changed[0]
    inputs = sorted((p for p in changed if p.startswith("input ")), key=lambda p: p not in prefer)
    if inputs:
        first = inputs[0]
    what = describe(first)
    rest = len(changed) - 1
    line = head + f"{what} changed since the stored run"
    if rest:
        line += f" (and {rest} more: %sci_cache why)"
    else:
        line += _names([p for p in comparison.same if p.startswith("input ")])
    if streak.get(first, 0) >= STREAK and first.startswith(("input ", "<dynamic> ")):
        name = first.split(" ", 1)[1]
        line += (
            f"; {name} changed on each of the last {streak[first]} runs: if it does not change the result, "
            f"leave it out with --ignore {name}"
        )
    return line


def next_streak(note: dict[str, Any] | None, comparison: Comparison | None) -> dict[str, int]:
    """How many runs in a row each part changed, this run included."""
    if note is None or comparison is None:
        return {}
    old = note.get("streak", {})
    return {p: int(old.get(p, 0)) + 1 for p in comparison.changed}


def why_rows(note: dict[str, Any]) -> list[list[str]]:
    """``%sci_cache why``: one row per part: part, the run compared with, the last run, same/changed."""
    previous = note.get("previous", {})
    parts = note.get("parts", {})
    rows = []
    for part in sorted(set(parts) | set(previous)):
        before, now = previous.get(part, "-"), parts.get(part, "-")
        rows.append([describe(part), str(before)[:12], str(now)[:12], "same" if before == now else "changed"])
    return rows
