"""The entry format: one pickle stream plus page-aligned raw buffers.

Values are pickled with protocol 5; every buffer of at least ``mmap_min_bytes``
(numpy arrays, and the arrays inside pandas objects) goes *out of band* into the
entry after the pickle stream.  Restoring hands those regions of a copy-on-write
memory map straight back to numpy, so a 200 MB array is restored without being
read or copied, and the user can still modify it (only touched pages are copied).

Layout::

    MAGIC(8) | header length (u32) | header JSON | pad | pickle stream | pad | buffer 0 | pad | ...

The header records every region's offset and length, the xxh3 digest of the
pickle stream and the total length; a truncated or altered entry fails these
checks and raises :class:`CorruptEntry` instead of crashing the unpickler.
"""

from __future__ import annotations

import io
import json
import mmap
import os
import pickle  # nosec B403  # entries live in a 0700 dir or behind a signing key
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import CacheError

__all__ = ["FORMAT_VERSION", "CorruptEntry", "PackedEntry", "open_buffer", "pack", "register_reducer", "unpack"]

MAGIC = b"SCICACH1"
#: Bumped whenever the layout or the meaning of a key changes; old entries become misses.
FORMAT_VERSION = 1
_ALIGN = 64


class CorruptEntry(CacheError):
    """An entry is truncated, altered, or was written by another format version."""


def _pad(offset: int) -> int:
    return (-offset) % _ALIGN


@dataclass
class PackedEntry:
    """A value serialized for storage; written by streaming :meth:`chunks`."""

    header: dict[str, Any]
    head: bytes
    stream: bytes
    buffers: list[memoryview] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Total size of the entry in bytes."""
        return int(self.header["total"])

    def chunks(self, chunk_size: int = 1 << 22) -> Iterator[bytes | memoryview]:
        """The entry's bytes in order, without joining the large buffers."""
        yield self.head
        yield b"\0" * _pad(len(self.head))
        yield self.stream
        offset = len(self.head) + _pad(len(self.head)) + len(self.stream)
        for buf in self.buffers:
            yield b"\0" * _pad(offset)
            offset += _pad(offset)
            for start in range(0, buf.nbytes, chunk_size):
                yield buf[start : start + chunk_size]
            offset += buf.nbytes

    def to_bytes(self) -> bytes:
        """The whole entry as one bytes object (memory and Redis backends)."""
        return b"".join(bytes(c) if isinstance(c, memoryview) else c for c in self.chunks())

    def reader(self) -> io.RawIOBase:
        """A file-like reader over :meth:`chunks` (for diskcache's streaming ``set``)."""
        return _ChunkReader(self.chunks())


class _ChunkReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes | memoryview]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return bytes(self._pending) + b"".join(bytes(c) for c in self._chunks)
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks)).cast("B")
            except StopIteration:
                return b""
        out = bytes(self._pending[:size])
        self._pending = self._pending[size:]
        return out


#: Reducer hooks: ``(module prefixes, hook)``; ``hook(obj)`` returns a pickle reduce tuple to store
#: ``obj`` differently, or ``NotImplemented``; it is asked only for objects whose class's module starts
#: with one of its prefixes.  Built in: SDK and HTTP clients stored as their settings (:mod:`.clients`),
#: ``np.load``'s NpzFile stored as its file (:mod:`.lazyfiles`), finished SDK streams (:mod:`.streams`).
_REDUCERS: list[tuple[tuple[str, ...], Callable[[Any], Any]]] = []


def of_class(value: Any, module: str, name: str) -> bool:
    """Is ``value``'s class called ``name`` and defined under ``module``?  (A reducer hook recognises
    a library's objects this way, without importing the library.)"""
    kind = type(value)
    return kind.__name__ == name and kind.__module__.startswith(module)


def register_reducer(hook: Callable[[Any], Any], modules: tuple[str, ...] = ("",)) -> Callable[[], None]:
    """Add a reducer hook to every later :func:`pack` for classes of ``modules`` (prefixes); returns its remover."""
    _default_reducers()
    entry = (tuple(modules), hook)
    _REDUCERS.append(entry)
    return lambda: _REDUCERS.remove(entry) if entry in _REDUCERS else None


def _default_reducers() -> None:
    if not _REDUCERS:
        from . import lazyfiles, streams
        from .clients import MODULES, reduce_client

        _REDUCERS.append((MODULES, reduce_client))
        _REDUCERS.append((lazyfiles.MODULES, lazyfiles.reduce_lazy_file))
        _REDUCERS.append((streams.MODULES, streams.reduce_stream))


def _dumps(value: Any, buffer_callback: Callable[[pickle.PickleBuffer], bool]) -> bytes:
    """cloudpickle's ``dumps``, with the reducer hooks asked first for objects of their modules."""
    import cloudpickle

    _default_reducers()
    hooks = tuple(_REDUCERS)
    prefixes = tuple({prefix for modules, _ in hooks for prefix in modules})
    base = cloudpickle.Pickler.reducer_override

    class _Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            # One startswith per object on the common path: pickling speed is the cache's speed.
            if type(obj).__module__.startswith(prefixes):
                module = type(obj).__module__
                for modules, hook in hooks:
                    if module.startswith(modules):
                        reduced = hook(obj)
                        if reduced is not NotImplemented:
                            return reduced
            return base(self, obj)

    out = io.BytesIO()
    _Pickler(out, protocol=5, buffer_callback=buffer_callback).dump(value)
    return out.getvalue()


def pack(value: Any, *, meta: dict[str, Any] | None = None, mmap_min_bytes: int = 1 << 20) -> PackedEntry:
    """Serialize ``value`` (cloudpickle, protocol 5) with large buffers out of band.

    Raises whatever the pickler raises for an unpicklable value.
    """
    import xxhash

    buffers: list[memoryview] = []
    readonly: list[bool] = []

    def keep_out_of_band(buf: pickle.PickleBuffer) -> bool:
        try:
            raw = buf.raw()
        except BufferError:
            return True  # not contiguous: serialize in band
        if raw.nbytes < mmap_min_bytes:
            return True
        buffers.append(raw)
        readonly.append(memoryview(buf).readonly)
        return False

    stream = _dumps(value, keep_out_of_band)
    header: dict[str, Any] = {"version": FORMAT_VERSION, "meta": meta or {}}
    # The meta (a cell's file fingerprints: thousands of rows) is encoded once, not on every pass below.
    meta_text = json.dumps(header["meta"], separators=(",", ":"), sort_keys=True)
    # Offsets depend on the header length, which depends on the offsets: fix the
    # header's size first with placeholders of the final width.
    header["stream"] = [0, len(stream), xxhash.xxh3_64_hexdigest(stream)]
    header["buffers"] = [[0, b.nbytes, ro] for b, ro in zip(buffers, readonly, strict=True)]
    header["total"] = 0
    for _ in range(10):
        head = _head(header, meta_text)
        if header["total"] and header["stream"][0] == len(head) + _pad(len(head)):
            break
        offset = len(head) + _pad(len(head))
        header["stream"][0] = offset
        offset += len(stream)
        for entry in header["buffers"]:
            offset += _pad(offset)
            entry[0] = offset
            offset += entry[1]
        header["total"] = offset
    head = _head(header, meta_text)
    if header["stream"][0] != len(head) + _pad(len(head)):  # pragma: no cover - guarded by the loop
        raise CacheError("entry header did not converge")
    return PackedEntry(header, head, stream, buffers)


def _head(header: dict[str, Any], meta_text: str | None = None) -> bytes:
    if meta_text is None:
        text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    else:  # the same bytes as above, with the meta's JSON given
        rest = {k: v for k, v in header.items() if k != "meta"}
        rest["meta"] = None
        encoded = json.dumps(rest, separators=(",", ":"), sort_keys=True)
        text = encoded.replace('"meta":null', '"meta":' + meta_text, 1).encode()
    # Fixed-width numbers keep the header length stable while offsets are filled in.
    text = text.ljust(len(text) + 64 - len(text) % 64, b" ")
    return MAGIC + struct.pack("<I", len(text)) + text


def read_header(data: Any) -> dict[str, Any]:
    """Parse and check the header of an entry (``data``: a buffer over the whole entry)."""
    view = memoryview(data)
    if view.nbytes < 12 or bytes(view[:8]) != MAGIC:
        raise CorruptEntry("not a sci_ext cache entry (bad magic; written by another version?)")
    (length,) = struct.unpack("<I", view[8:12])
    if 12 + length > view.nbytes:
        raise CorruptEntry("entry truncated inside its header")
    try:
        header: dict[str, Any] = json.loads(bytes(view[12 : 12 + length]))
    except ValueError as exc:
        raise CorruptEntry(f"entry header unreadable ({exc})") from None
    if header.get("version") != FORMAT_VERSION:
        raise CorruptEntry(f"entry format {header.get('version')} is not {FORMAT_VERSION}")
    if header.get("total") != view.nbytes:
        raise CorruptEntry(f"entry is {view.nbytes} bytes, expected {header.get('total')} (truncated?)")
    return header


def unpack(data: Any) -> tuple[Any, dict[str, Any]]:
    """Restore ``(value, meta)`` from an entry.

    ``data`` should be writable (a copy-on-write ``mmap`` or a ``bytearray``) so that
    restored arrays are writable; a read-only buffer restores read-only arrays.
    """
    import cloudpickle
    import xxhash

    header = read_header(data)
    view = memoryview(data)
    start, length, digest = header["stream"]
    stream = view[start : start + length]
    if xxhash.xxh3_64_hexdigest(stream) != digest:
        raise CorruptEntry("entry checksum mismatch (altered or partly written)")
    buffers = []
    for offset, size, readonly in header["buffers"]:
        region = view[offset : offset + size]
        buffers.append(region.toreadonly() if readonly else region)
    try:
        value = cloudpickle.loads(stream, buffers=buffers)
    except Exception as exc:
        raise CorruptEntry(f"entry cannot be unpickled ({type(exc).__name__}: {exc})") from None
    return value, header.get("meta", {})


def open_buffer(handle: Any) -> Any:
    """A writable copy-on-write view of an entry given by a file handle or bytes.

    Real files are memory-mapped with ``ACCESS_COPY``: nothing is read until
    touched, and writes stay private to this process.
    """
    if isinstance(handle, (bytes, bytearray, memoryview)):
        return bytearray(handle)
    try:
        fileno = handle.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return bytearray(handle.read())
    size = os.fstat(fileno).st_size
    if size == 0:
        return bytearray()
    return mmap.mmap(fileno, size, access=mmap.ACCESS_COPY)
