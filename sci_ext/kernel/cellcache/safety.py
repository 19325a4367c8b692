"""The dynamic safety net: what a ``%%cached`` miss touched that the static analysis did not key.

One audit hook (:func:`sys.addaudithook`, PEP 578) is installed the first time a cached
cell misses.  It does nothing unless a :class:`Recorder` is active, and a recorder is
active only while the code of a cached cell runs on a miss, in that cell's thread: a
hit, a plain cell, another thread and sci_ext's own work before and after the run cost
one global lookup per audited event and record nothing.

While active it records:

* files opened for reading and directories listed (``open``, ``os.listdir``,
  ``os.scandir``, ``glob.glob``): each gets a fingerprint (size, mtime_ns, and the
  content hash of small files) that is checked before a hit is served; files the cell
  wrote before reading them are outputs, not inputs; files of the Python installation,
  of imported modules and of per-user tool caches are not inputs;
* code compiled from strings by notebook-defined functions (``eval`` inside a class's
  ``__repr__``): what such code reads cannot be known, so the entry is not stored and
  one line names the function.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

__all__ = ["MAX_FILES", "Recorder", "changed_file", "fingerprint", "install"]

#: Files and directories one run records at most; past it the entry is not stored (and says so).
MAX_FILES = 2000
#: Files up to this size are fingerprinted by content too (an mtime can lie: same-second writes, copies).
SMALL_FILE_BYTES = 1 << 16

_installed = False
_active: Recorder | None = None
#: Off only to measure what the net costs (benchmarks/bench_cached.py); never off in use.
ENABLED = True


class Recorder:
    """What one miss read: files, directories, and strings compiled by notebook code."""

    def __init__(self, user_ns: dict[str, Any], cell_filename: str = "") -> None:
        self.user_ns = user_ns
        self.cell_filename = cell_filename
        self.thread = threading.get_ident()
        #: The working directory the cell started in: relative paths are recorded relative to it.
        self.cwd = os.getcwd()
        #: path -> "file" | "dir" | "glob", in the order first read (see :meth:`_paths` for the form).
        self.reads: dict[str, str] = {}
        self.written: set[str] = set()
        #: Where notebook code compiled a string (``show.__repr__``).
        self.compiled: list[str] = []
        self.overflow = False
        self._busy = False

    def __enter__(self) -> Recorder:
        global _active
        if ENABLED:
            install()
            _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        _active = None

    def fingerprints(self) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """``(reads, written)``: the fingerprint of each recorded path, now (after the run).

        Relative paths are resolved against the directory the cell started in (the cell may
        have changed directory); they stay relative in the entry, so a hit checks them where
        the cell would read them: against the working directory of the run asking.
        """
        reads = {path: fingerprint(path, kind, self.cwd) for path, kind in self.reads.items()}
        written = {path: fingerprint(path, "file", self.cwd) for path in sorted(self.written)[:MAX_FILES]}
        return reads, written

    # -- called from the hook ------------------------------------------------
    def _paths(self, raw: Any) -> tuple[str, list[str]] | None:
        """``(absolute path, the forms recorded)`` of a path the cell used, or None.

        A path the cell names relatively is recorded relative to its start directory, as the
        cell saw it: the same notebook run elsewhere reads (and checks) the file there.  An
        absolute path inside the start directory is recorded both ways (a library may have made
        the user's relative name absolute); any other absolute path as it is.
        """
        if isinstance(raw, int):
            return None  # an fd: its path was recorded when it was opened
        try:
            path = os.fsdecode(raw)
        except (TypeError, ValueError):
            return None
        full = os.path.abspath(path)
        if not os.path.isabs(path):
            return full, [os.path.relpath(full, self.cwd)]
        inside = os.path.relpath(full, self.cwd)
        if inside == os.curdir or not inside.startswith(os.pardir):
            return full, [full, inside]
        return full, [full]

    def _add(self, raw: Any, kind: str) -> None:
        found = self._paths(raw)
        if found is None:
            return
        full, forms = found
        if any(f in self.reads or f in self.written for f in forms) or _ignored(full):
            return
        if len(self.reads) + len(forms) > MAX_FILES:
            self.overflow = True
            return
        for form in forms:
            self.reads[form] = kind

    def event(self, name: str, args: tuple[Any, ...]) -> None:
        """One audited event while the cell runs."""
        frame = sys._getframe(2)
        filename = frame.f_code.co_filename
        if filename.startswith("<frozen importlib") or filename.startswith("<frozen zipimport"):
            return  # imports: keyed by module version or source already
        if str(frame.f_globals.get("__name__", "")).startswith(_IMPORT_MACHINERY):
            # Finding modules and distributions (a library asking importlib.metadata for a version
            # lists every sys.path directory): the modules are keyed by version or code already, and
            # the listing of a sys.path directory (the kernel's start directory, a checkout on
            # PYTHONPATH) changes with every unrelated file written there.
            return
        if name == "open":
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            if _writes(mode, flags):
                found = self._paths(args[0])
                if found is not None and not _ignored(found[0]):
                    self.written.update(f for f in found[1] if f not in self.reads)
                return
            self._add(args[0], "file")
        elif name in ("os.listdir", "os.scandir"):
            if filename.endswith(("glob.py", "pathlib.py")) and "glob" in frame.f_code.co_name:
                return  # glob's own listing: the pattern is recorded
            self._add(args[0] if args and args[0] is not None else ".", "dir")
        elif name == "glob.glob":
            pattern = args[0]
            if isinstance(pattern, (str, bytes)):
                self._add(pattern, "glob")
        elif name == "compile" and isinstance(args[0], (str, bytes)):
            own_cell = filename == self.cell_filename and frame.f_code.co_name == "<module>"
            if frame.f_globals is self.user_ns and not own_cell:  # the cell's own strings are analyzed
                qualname = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
                # show.__repr__.<locals>.<genexpr> -> show.__repr__ (the function the user wrote)
                where = ".".join(p for p in qualname.split(".") if not p.startswith("<")) or qualname
                if where not in self.compiled:
                    self.compiled.append(where)


def _hook(name: str, args: tuple[Any, ...]) -> None:
    recorder = _active
    if recorder is None or recorder._busy or recorder.thread != threading.get_ident():
        return
    if name not in _EVENTS:
        return
    recorder._busy = True
    try:
        recorder.event(name, args)
    except Exception:  # noqa: S110  # nosec B110  # the net must never break the user's cell
        pass
    finally:
        recorder._busy = False


_EVENTS = frozenset({"open", "os.listdir", "os.scandir", "glob.glob", "compile"})
#: Modules that look for modules and distributions on sys.path: what they read is not the cell's data.
_IMPORT_MACHINERY = ("importlib.", "importlib_metadata", "importlib_resources", "pkgutil", "pkg_resources", "zipimport")


def install() -> None:
    """Install the audit hook (once per process: audit hooks cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    if isinstance(flags, int):
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
    return False


def _ignored_roots() -> tuple[str, ...]:
    home = os.path.expanduser("~")
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, "/proc", "/sys", "/dev", "/usr", "/etc", "/lib", "/opt"}
    for var, default in (("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config"), ("XDG_STATE_HOME", ".local")):
        roots.add(os.environ.get(var) or os.path.join(home, default))
    roots.update(os.path.join(home, d) for d in (".ipython", ".matplotlib", ".local", ".jupyter"))
    if os.environ.get("MPLCONFIGDIR"):
        roots.add(os.environ["MPLCONFIGDIR"])
    import site

    roots.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    return tuple(sorted(os.path.join(os.path.abspath(r), "") for r in roots if r))


_roots: tuple[str, ...] | None = None


def _sci_ext_roots() -> tuple[str, ...]:
    """sci_ext's own directories (the cell cache, its state), wherever they are configured."""
    try:
        from ...core.config import get_config

        cfg = get_config()
        dirs = [cfg.cache.dir, getattr(cfg.core, "state_dir", "")]
    except Exception:  # a broken config must not break the net
        return ()
    return tuple(os.path.join(os.path.abspath(os.path.expanduser(d)), "") for d in dirs if d)


def _ignored(path: str) -> bool:
    """Files of the installation, of tool caches and of sci_ext itself are never inputs."""
    global _roots
    if _roots is None:
        _roots = _ignored_roots() + _sci_ext_roots()
    module_file = path.endswith((".py", ".pyc", ".so", ".pth"))
    if module_file and any(path.startswith(os.path.join(p, "")) for p in sys.path if p):
        return True  # a module's source: keyed by its version or its code
    return path.startswith(_roots) or path in ("/etc/localtime",)


# -- fingerprints -----------------------------------------------------------------


#: A file modified less than this long before it is fingerprinted may change again within the same
#: mtime tick unnoticed ("racy"): its content is hashed too (small files only).
RACY_SECONDS = 2.0


def _digest(path: str) -> str:
    import xxhash

    with open(path, "rb") as handle:
        return str(xxhash.xxh3_128(handle.read()).hexdigest())


def fingerprint(path: str, kind: str, cwd: str | None = None) -> list[Any]:
    """``[kind, size, mtime_ns, content digest]`` of a file, listing or glob (``["absent"]`` if gone).

    Files are known by size and mtime; the content of a small file is hashed only when its
    mtime is too recent to trust (a write in the same tick as the read).  A relative ``path``
    is resolved against ``cwd`` (default: the working directory); a glob's matches are keyed
    as the cell saw them (relative for a relative pattern).
    """
    import glob
    import time

    from ...core.cache.keys import ValueHasher

    hasher = ValueHasher()
    if kind == "glob":
        hasher.update(sorted(glob.glob(path, root_dir=cwd)), "glob")
        return [kind, 0, 0, hasher.digest()]
    if cwd is not None:
        path = os.path.join(cwd, path)
    try:
        st = os.stat(path)
    except OSError:
        return ["absent"]
    if kind == "dir":
        try:
            hasher.update(sorted(os.listdir(path)), "listing")
        except OSError:
            return ["absent"]
        return [kind, 0, 0, hasher.digest()]
    digest = ""
    if st.st_size <= SMALL_FILE_BYTES and time.time() - st.st_mtime_ns / 1e9 < RACY_SECONDS:
        try:
            digest = _digest(path)
        except OSError:
            return ["absent"]
    return [kind, st.st_size, st.st_mtime_ns, digest]


def changed_file(files: dict[str, list[Any]], written: bool = False) -> str:
    """The first recorded file/listing that differs now (``'file data.csv changed'``), or ''.

    ``written``: the files the cell wrote (a hit does not write them again, so they must still
    hold what the run wrote).
    """
    for path, old in files.items():
        shown = _shown(path) + (", which the cell writes," if written else "")
        kind = old[0]
        if kind == "absent":
            if os.path.exists(path):
                return f"file {shown} appeared"
            continue
        if kind == "file":
            try:
                st = os.stat(path)
            except OSError:
                return f"file {shown} disappeared"
            same_stat = st.st_size == old[1] and st.st_mtime_ns == old[2]
            if same_stat and not old[3]:
                continue
            if old[3] and st.st_size == old[1]:
                # Racy when recorded (or touched since): the bytes decide.
                try:
                    if _digest(path) == old[3]:
                        continue
                except OSError:
                    return f"file {shown} disappeared"
            return f"file {shown} changed"
        now = fingerprint(path, kind)
        if now != old:
            what = "directory listing of" if kind == "dir" else "files matching"
            return f"{what} {shown} changed" if now[0] != "absent" else f"directory {shown} disappeared"
    return ""


def _shown(path: str) -> str:
    """A path as the user wrote it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("..") else path
