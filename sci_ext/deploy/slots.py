"""The two slots (blue, green), the pointer to the active one, and the live target file.

Layout, under ``core.state_dir/deploy`` (a private 0700 directory):

- ``blue.toml`` / ``green.toml``: the slots, 0600 (a config may hold a secret setting);
- ``active.json``: ``{"slot", "sha256", "switched_at", "target"}``, replaced atomically:
  the commit point of a switch;
- ``backups/``: the target file as it was before each switch.

The target is the config file running processes read (the user file by default).  It
always holds the active slot's text; the pointer decides, and :meth:`SlotStore.reconcile`
re-copies the active slot into the target when a switch was interrupted between the
two writes.  A target edited by hand since the last switch is backed up before any
overwrite, never lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config.files import atomic_write_text
from ..core.trust import atomic_write, ensure_private_dir, read_private_file

__all__ = ["SLOTS", "SlotStatus", "SlotStore"]

SLOTS = ("blue", "green")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SlotStatus:
    """What ``jupyter sci deploy --status`` shows."""

    active: str | None
    target: str
    switched_at: float | None
    slots: dict[str, dict[str, Any]]
    in_sync: bool

    def lines(self) -> list[str]:
        """Human-readable lines, one per slot and one for the target."""
        out = [f"target: {self.target}" + ("" if self.in_sync else " (differs from the active slot)")]
        for name in SLOTS:
            info = self.slots[name]
            mark = "*" if name == self.active else " "
            if not info["exists"]:
                out.append(f"{mark} {name}: empty")
                continue
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["mtime"]))
            out.append(f"{mark} {name}: {info['sha256'][:12]}  written {when}" + ("  (active)" if mark == "*" else ""))
        return out


class SlotStore:
    """The deploy directory of one target file."""

    def __init__(self, root: Path, target: Path) -> None:
        self.root = root
        self.target = target

    # ----------------------------------------------------------------- paths
    def slot_path(self, slot: str) -> Path:
        """The file of ``slot`` (``blue`` or ``green``)."""
        if slot not in SLOTS:
            raise ValueError(f"unknown slot {slot!r} (expected blue or green)")
        return self.root / f"{slot}.toml"

    @property
    def pointer_path(self) -> Path:
        """``active.json``, the commit point of every switch."""
        return self.root / "active.json"

    def ensure(self) -> None:
        """Create the private directories (every missing component 0700 whatever the umask, owner checked).

        Through :func:`~sci_ext.core.trust.ensure_private_dir` (review 2026-12-b R4: the old
        ``mkdir(parents=True)`` left the parents to the umask): another user can then neither
        replace a slot nor the pointer.
        """
        ensure_private_dir(self.root, what="deploy directory")
        ensure_private_dir(self.root / "backups", what="deploy backups directory")

    # --------------------------------------------------------------- pointer
    def pointer(self) -> dict[str, Any] | None:
        """The active pointer, or ``None`` before the first deploy (or if it is damaged)."""
        try:
            data = json.loads(read_private_file(self.pointer_path, what="deploy pointer").decode("utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("slot") not in SLOTS:
            return None
        return data

    def active(self) -> str | None:
        """The active slot's name."""
        pointer = self.pointer()
        return None if pointer is None else str(pointer["slot"])

    def inactive(self) -> str:
        """The slot a deploy writes into."""
        return "green" if self.active() == "blue" else "blue"

    @staticmethod
    def other(slot: str) -> str:
        """The slot that is not ``slot``."""
        return "green" if slot == "blue" else "blue"

    def rollback_target(self) -> str | None:
        """The slot rollback would switch to, if it still holds the config active before the last switch."""
        pointer = self.pointer()
        if pointer is None:
            return None
        other = self.other(str(pointer["slot"]))
        text = self.read_slot(other)
        if text is None or pointer.get("other_sha256") != _sha256(text):
            return None
        return other

    def read_slot(self, slot: str) -> str | None:
        """The text of ``slot``, or ``None`` if it is empty."""
        try:
            # no symlink followed, owner checked: a slot swapped for another user's file is refused
            return read_private_file(self.slot_path(slot), what=f"deploy slot {slot}").decode("utf-8")
        except FileNotFoundError:
            return None

    def write_slot(self, slot: str, text: str) -> Path:
        """Write ``text`` into ``slot`` atomically (0600)."""
        self.ensure()
        path = self.slot_path(slot)
        if path.exists():
            os.chmod(path, 0o600)
        atomic_write_text(path, text, mode=0o600)
        return path

    def _target_text(self) -> str | None:
        try:
            return self.target.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def backup_target(self, reason: str) -> Path | None:
        """Copy the target into ``backups/`` (0600); returns the copy, or ``None`` if there is no target."""
        if not self.target.exists():
            return None
        self.ensure()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = self.root / "backups" / f"{self.target.name}.{stamp}.{reason}"
        n = 1
        while backup.exists():
            backup = self.root / "backups" / f"{self.target.name}.{stamp}.{reason}.{n}"
            n += 1
        atomic_write(backup, self.target.read_bytes())
        return backup

    def adopt_target(self) -> str:
        """Before the first deploy: the current target becomes the active slot (blue)."""
        self.ensure()
        text = self._target_text() or ""
        self.write_slot("blue", text)
        self._write_pointer("blue", text)
        return "blue"

    def _write_pointer(self, slot: str, text: str) -> None:
        other = self.read_slot(self.other(slot))
        record = {
            "slot": slot,
            "sha256": _sha256(text),
            # What the other slot held at the switch: rollback goes there only if it still does.
            "other_sha256": None if other is None else _sha256(other),
            "switched_at": time.time(),
            "target": str(self.target),
        }
        atomic_write_text(self.pointer_path, json.dumps(record, indent=2) + "\n", mode=0o600)

    def switch(self, slot: str) -> None:
        """Make ``slot`` active: the pointer first (the commit point), then the target file."""
        text = self.read_slot(slot)
        if text is None:
            raise FileNotFoundError(f"{self.slot_path(slot)}: slot {slot} is empty")
        self._write_pointer(slot, text)
        self._sync_target(text)

    def _sync_target(self, text: str) -> None:
        if self._target_text() == text:
            return
        # A deployed config may hold a secret setting: the live file is private too.
        if self.target.exists():
            os.chmod(self.target, 0o600)
        atomic_write_text(self.target, text, mode=0o600)

    def reconcile(self) -> bool:
        """Copy the active slot into the target if a switch stopped half-way; returns whether it did.

        A target that matches neither slot was edited by hand: it is backed up first.
        """
        pointer = self.pointer()
        if pointer is None:
            return False
        text = self.read_slot(str(pointer["slot"]))
        current = self._target_text()
        if text is None or current == text:
            return False
        if current is not None and current not in {self.read_slot(s) for s in SLOTS}:
            self.backup_target("edited")
        self._sync_target(text)
        return True

    def status(self) -> SlotStatus:
        """Both slots, the pointer and whether the target holds the active slot."""
        slots: dict[str, dict[str, Any]] = {}
        for name in SLOTS:
            path = self.slot_path(name)
            text = self.read_slot(name)
            slots[name] = {
                "exists": text is not None,
                "path": str(path),
                "sha256": _sha256(text) if text is not None else None,
                "mtime": path.stat().st_mtime if text is not None else None,
            }
        pointer = self.pointer()
        active = None if pointer is None else str(pointer["slot"])
        in_sync = active is None or self._target_text() == self.read_slot(active)
        return SlotStatus(
            active=active,
            target=str(self.target),
            switched_at=None if pointer is None else float(pointer.get("switched_at", 0)),
            slots=slots,
            in_sync=in_sync,
        )
