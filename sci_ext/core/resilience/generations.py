"""A memory-mapped file of change counters, so readers of a shared store skip unchanged records.

Reading a breaker's record from SQLite costs a SQLite query (~6 us); reading an
8-byte counter from a shared memory map costs ~0.1 us.  :class:`GenerationFile`
holds one counter per *slot* (a key hashes to a slot; two keys sharing a slot
only cost each other an extra read).  Every write to the store bumps the slot's
counter; a reader keeps the last record it read together with the counter it saw
before reading, and reads the store again only when the counter moved.

Layout (``SIZE`` bytes, native-endian unsigned 64-bit words, so every word is
aligned and read or written in one load/store): word 0 holds :data:`MAGIC`,
words 1.. are the slot counters.

Write protocol (a seqlock, serialised by ``flock`` on the file plus a thread
lock): the writer makes the counter odd *before* changing the store and even
(and larger) *after* the change is committed.  A reader that sees an odd counter
does not trust its copy and does not cache what it reads, so a writer that dies
between the two steps leaves readers correct (they read the store each time)
until the next write makes the counter even again.  Counters start at random even
values, so a re-created file cannot replay counters a reader cached from the old one.

Damage: a file whose size or magic is wrong is re-initialised (under the lock)
by the next process that opens it; a file replaced or deleted under running
processes is noticed by their next write, which marks the old mapping
:data:`RETIRED` so everyone still mapping it falls back to reading the store and
re-opens the new file.  A process started after the deletion cannot reach the
old file, so until a process that still maps it writes, the processes that map
it and only read miss the new one's writes: do not delete the file under running
kernels (deleting the SQLite database under them is no better).  Truncating the
file while processes map it is not supported either (touching a mapped page past
the end of a file raises SIGBUS).  Where
``fcntl``/``mmap`` are unavailable (Windows) :meth:`GenerationFile.open` returns
``None`` and stores read every time.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MAGIC", "RETIRED", "SIZE", "SLOTS", "GenerationFile"]

_log = logging.getLogger("sci_ext.resilience")

#: File size: one page.
SIZE = 4096
#: Word 0 of a valid file (b"sciGEN01" read as a native-endian u64).
MAGIC = int.from_bytes(b"sciGEN01", sys.byteorder)
#: Word 0 of a file that was replaced on disk: readers must re-open it.
RETIRED = int.from_bytes(b"sciGENxx", sys.byteorder)
#: Counter slots (words 1 .. SLOTS).
SLOTS = SIZE // 8 - 1
#: Seconds between two warnings about the same unusable file.
WARN_INTERVAL = 60.0

try:  # POSIX only; elsewhere there is no generation file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def slot_of(key: str) -> int:
    """The word index of ``key``'s counter (stable across processes: crc32, not ``hash``)."""
    return 1 + zlib.crc32(key.encode("utf-8")) % SLOTS


_last_warning: dict[Path, float] = {}


def _warn_unusable(path: Path, exc: BaseException) -> None:
    """Warn once a minute per file (writers retry opening it on every write)."""
    now = time.monotonic()
    if now - _last_warning.get(path, -WARN_INTERVAL) >= WARN_INTERVAL:
        _last_warning[path] = now
        _log.warning("generation file %s unusable (%s); shared state is read from the store on every call", path, exc)


def _initialise(fd: int) -> None:
    """Give ``fd`` its size, random even counters, and the magic word last."""
    os.fchmod(fd, 0o600)
    os.ftruncate(fd, SIZE)
    counters = bytearray(os.urandom(SIZE))
    words = memoryview(counters).cast("Q")
    for index in range(1, SLOTS + 1):
        words[index] &= ~1 & 0x3FFF_FFFF_FFFF_FFFF  # even, with headroom so bumps never overflow
    words[0] = MAGIC
    words.release()
    os.pwrite(fd, bytes(counters[8:]), 8)
    os.pwrite(fd, bytes(counters[:8]), 0)


class GenerationFile:
    """One open, mapped generation file (see the module docstring for the protocol)."""

    def __init__(self, path: Path, fd: int, mapping: mmap.mmap) -> None:
        self.path = path
        self._fd = fd
        self._mmap = mapping
        #: The counters as 64-bit words: ``words[slot]``; ``words[0]`` is the magic.
        self.words = memoryview(mapping).cast("Q")
        stat = os.fstat(fd)
        self._identity = (stat.st_dev, stat.st_ino)
        self._pid = os.getpid()
        self._thread_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> GenerationFile | None:
        """Open (creating or repairing under the file lock) and map ``path``; ``None`` when impossible."""
        if fcntl is None:  # pragma: no cover - Windows
            return None
        from ..trust import open_private

        path = Path(path)
        try:  # 0600, no symlink followed, ours: another user's file is refused (read from the store instead)
            fd = open_private(path, os.O_RDWR, what="generation file")
        except OSError as exc:
            _warn_unusable(path, exc)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                # Size and magic are checked under the lock, so no process maps a half-made file.
                if os.fstat(fd).st_size != SIZE or int.from_bytes(os.pread(fd, 8, 0), sys.byteorder) != MAGIC:
                    _initialise(fd)
                mapping = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except (OSError, ValueError) as exc:
            os.close(fd)
            _warn_unusable(path, exc)
            return None
        return cls(path, fd, mapping)

    @property
    def valid(self) -> bool:
        """Whether readers may trust the counters (magic intact, not retired)."""
        return bool(self.words[0] == MAGIC)

    def is_current(self) -> bool:
        """Whether this mapping is still the file at ``path`` in this process (not replaced, not forked)."""
        if os.getpid() != self._pid:
            return False  # a fork shares our flock; the child must open its own
        try:
            stat = os.stat(self.path)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) == self._identity and stat.st_size == SIZE and self.valid

    def replaced(self) -> bool:
        """Whether ``path`` is now missing or another file."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return True
        return (stat.st_dev, stat.st_ino) != self._identity

    def retire(self) -> None:
        """Tell every process mapping this file that it is stale (they then re-open ``path``)."""
        with contextlib.suppress(ValueError):
            if self.words[0] == MAGIC:
                self.words[0] = RETIRED

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive access among the threads of this process and every other process."""
        if fcntl is None:  # pragma: no cover - the file is never opened without fcntl
            raise RuntimeError("generation files need fcntl (POSIX)")
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def begin(self, slot: int) -> None:
        """Mark ``slot`` as being written (odd); call under :meth:`locked`."""
        self.words[slot] |= 1

    def end(self, slot: int) -> int:
        """Mark ``slot``'s write finished: a new, larger even value (returned); call under :meth:`locked`."""
        value = (self.words[slot] | 1) + 1
        self.words[slot] = value
        return value

    def detach(self) -> None:
        """Close the file descriptor but keep the mapping (threads may still be reading :attr:`words`)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Unmap and close."""
        with contextlib.suppress(BufferError, ValueError):
            self.words.release()
        with contextlib.suppress(BufferError, ValueError):
            self._mmap.close()
        self.detach()
