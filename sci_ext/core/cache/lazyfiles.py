"""Lazy file handles in cache entries: stored as the file they read, opened again on a hit.

``load_xy = np.load("x_y.npz")`` binds an ``NpzFile``: an open zip archive whose arrays are
read when asked for.  It cannot be pickled (it holds an open file), and a copy of its arrays
would not be the same object (``.files``, ``.close()``, lazy reads).  The :func:`reduce_lazy_file`
hook of :mod:`.serialize` stores it as its path and the options it was opened with; a hit calls
:func:`reopen_npz`.  This is exact because the cell's safety net fingerprinted the file when the
cell opened it, and a hit is served only while the file still has that fingerprint: the file
opened again holds what the stored run read.  A handle over a file object (``np.load(BytesIO)``)
or a closed one is not reduced: it stays unstorable, and the cell says so.

Nothing here imports numpy: a value is recognised by its class's module and name.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import CacheError
from .serialize import of_class

__all__ = ["MODULES", "reduce_lazy_file", "reopen_npz"]
MODULES = ("numpy.lib",)  # where the NpzFile class lives: the serializer asks the hook about no other


def reduce_lazy_file(obj: Any) -> Any:
    """``(reopen_npz, args)`` for an ``NpzFile`` opened from a path, else ``NotImplemented``."""
    if not of_class(obj, MODULES[0], "NpzFile"):
        return NotImplemented
    fid = getattr(obj, "fid", None)
    name = getattr(fid, "name", None)
    if fid is None or getattr(fid, "closed", True) or not isinstance(name, (str, bytes)):
        return NotImplemented
    path = os.fsdecode(name)
    try:
        st = os.stat(path)
    except OSError:
        return NotImplemented
    options: dict[str, Any] = {"allow_pickle": bool(obj.allow_pickle)}
    if getattr(obj, "max_header_size", None) is not None:
        options["max_header_size"] = int(obj.max_header_size)
    kwargs = dict(getattr(obj, "pickle_kwargs", None) or {})
    # np.load's pickle options are its encoding and fix_imports: plain values.
    options.update({k: v for k, v in kwargs.items() if k in ("encoding", "fix_imports")})
    return reopen_npz, (path, options, [st.st_size, st.st_mtime_ns])


def reopen_npz(path: str, options: dict[str, Any], stat: list[int] | None = None) -> Any:
    """Open ``path`` as ``np.load`` did (relative paths against the working directory, as the cell named it).

    ``stat``: the file's size and mtime when the entry was stored; a file that differs is refused
    (the hit then fails and the cell runs), whatever else checked it before.
    """
    import numpy

    if stat is not None:
        try:
            st = os.stat(path)
        except OSError:
            raise CacheError(f"file {path} (an np.load result) is gone") from None
        if [st.st_size, st.st_mtime_ns] != list(stat):
            raise CacheError(f"file {path} (an np.load result) changed since the entry was stored")
    return numpy.load(path, **options)
