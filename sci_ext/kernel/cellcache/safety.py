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
from time import time as _now
from typing import Any

__all__ = ["MAX_FILES", "Recorder", "changed_file", "fingerprint", "install"]

#: Files and directories one run records at most; past it the entry is not stored (and says so).
MAX_FILES = 2000
#: Files up to this size are fingerprinted by content too (an mtime can lie: same-second writes, copies).
SMALL_FILE_BYTES = 1 << 16

_installed = False
#: Paths are handled with string tests on POSIX (they run per path a cell read); os.path elsewhere.
_NOT_POSIX = os.sep != "/"
_active: Recorder | None = None
#: Off only to measure what the net costs (benchmarks/bench_cached.py); never off in use.
ENABLED = True


class Recorder:
    """What one miss read: files, directories, and strings compiled by notebook code.

    The hook only notes the first use of each path (with the working directory it was used
    from); :meth:`fingerprints` turns them into entry paths after the run, off the cell's
    per-file cost.
    """

    def __init__(self, user_ns: dict[str, Any], cell_filename: str = "") -> None:
        self.user_ns = user_ns
        self.cell_filename = cell_filename
        self.thread = threading.get_ident()
        #: The working directory the cell started in: relative paths are recorded relative to it.
        self.cwd = os.getcwd()
        self._below = os.path.join(self.cwd, "")
        #: ``(raw path, directory it was used from) -> "dir" | "glob" | "write"``, or for a file read
        #: its ``(size, mtime_ns)`` as the cell opened it (None: it did not exist); first use only.
        self.used: dict[tuple[Any, str], Any] = {}
        self._stat_of: dict[str, tuple[int, int] | None] = {}
        #: Where notebook code compiled a string (``show.__repr__``), and the strings it compiled.
        self.compiled: list[str] = []
        self.sources: list[str] = []
        self._now = self.cwd
        self._moved = False
        self._full = False
        self._busy = False
        self._resolved: tuple[dict[str, str], set[str]] | None = None

    def __enter__(self) -> Recorder:
        global _active
        if ENABLED:
            install()
            if _roots is None:
                _set_roots()  # before the hook runs: finding sci_ext's directories reads its config
            _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        _active = None
        self._resolved = None

    # -- after the run ---------------------------------------------------------
    @property
    def reads(self) -> dict[str, str]:
        """``{entry path: "file" | "dir" | "glob"}`` of what the cell read, in the order first used."""
        return self._resolve()[0]

    @property
    def written(self) -> set[str]:
        """Entry paths of the files the cell wrote before reading them (outputs, not inputs)."""
        return self._resolve()[1]

    @property
    def overflow(self) -> bool:
        """More than :data:`MAX_FILES` paths: the entry is not stored."""
        return self._full or len(self.reads) > MAX_FILES

    def _resolve(self) -> tuple[dict[str, str], set[str]]:
        if self._resolved is not None:
            return self._resolved
        reads: dict[str, str] = {}
        written: set[str] = set()
        paths, ignored, stat_of, below = self._paths, _ignored, self._stat_of, self._below
        for (raw, where), kind in self.used.items():
            if (
                kind.__class__ is not str
                and raw.__class__ is str
                and raw[:1] == "/"
                and not _NOT_POSIX
                and not raw.startswith(below)
                and "/." not in raw
                and "//" not in raw
            ):
                # The common case, per file a cell read: an absolute, normal path outside the start
                # directory, recorded as it is; the hook tested it against the ignored roots already.
                if raw in reads or raw in written or (raw.endswith(_MODULE_SUFFIXES) and ignored(raw)):
                    continue
                reads[raw] = "file"
                stat_of[raw] = kind
                if len(reads) > MAX_FILES:
                    break
                continue
            found = paths(raw, where)
            if found is None:
                continue
            full, forms = found
            first, last = forms[0], forms[-1]
            # A path's first use decides: read first, an input; written first, an output.
            if first in reads or first in written or last in reads or last in written or ignored(full):
                continue
            if kind == "write":
                written.update(forms)
                continue
            if kind.__class__ is str:
                for form in forms:
                    reads[form] = kind
                continue
            for form in forms:  # a file read, with its stat as opened
                reads[form] = "file"
                stat_of[form] = kind
            if len(reads) > MAX_FILES:
                break  # overflow: the entry is not stored, no need to resolve the rest
        self._resolved = (reads, written)
        return self._resolved

    def fingerprints(self) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """``(reads, written)``: the fingerprint of each recorded path, now (after the run).

        Relative paths are resolved against the directory the cell started in (the cell may
        have changed directory); they stay relative in the entry, so a hit checks them where
        the cell would read them: against the working directory of the run asking.
        """
        cwd, now, stat_of = self.cwd, _now(), self._stat_of
        reads: dict[str, list[Any]] = {}
        for path, kind in self.reads.items():
            if kind != "file":
                reads[path] = fingerprint(path, kind, cwd)
                continue
            # A file is known as it was when the cell opened it (a change while the cell ran is
            # then a change); one whose mtime is too recent to trust is hashed too (small files).
            st = stat_of.get(path)
            if st is None:
                reads[path] = ["absent"]
            elif st[0] <= SMALL_FILE_BYTES and now - st[1] / 1e9 < RACY_SECONDS:
                done = fingerprint(path, kind, cwd)
                reads[path] = done if done[1:3] == list(st) else [kind, st[0], st[1], ""]
            else:
                reads[path] = [kind, st[0], st[1], ""]
        written = {path: fingerprint(path, "file", cwd) for path in sorted(self.written)[:MAX_FILES]}
        return reads, written

    def _paths(self, raw: Any, where: str) -> tuple[str, list[str]] | None:
        """``(absolute path, the forms recorded)`` of a path the cell used from ``where``, or None.

        A path the cell names relatively is recorded relative to its start directory, as the
        cell saw it: the same notebook run elsewhere reads (and checks) the file there.  An
        absolute path inside the start directory is recorded both ways (a library may have made
        the user's relative name absolute); any other absolute path as it is.
        """
        if isinstance(raw, str):
            path = raw
        else:
            try:
                path = os.fsdecode(raw)
            except (TypeError, ValueError):
                return None
        absolute = os.path.isabs(path) if _NOT_POSIX else path.startswith("/")
        full = path if absolute else os.path.join(where, path)
        if _NOT_POSIX or "/." in full or "//" in full:
            full = os.path.normpath(full)  # only when there is something to normalize (it is per path)
        inside = os.curdir if full == self.cwd else full[len(self._below) :] if full.startswith(self._below) else None
        if not absolute:
            return full, [inside if inside is not None else os.path.relpath(full, self.cwd)]
        return full, [full] if inside is None else [full, inside]

    # -- called from the hook: as little as possible, once per path ------------------------
    def _use(self, raw: Any, kind: str) -> None:
        if isinstance(raw, int):
            return  # an fd: its path was recorded when it was opened
        if self._moved:  # the cell changed directory since the last event: relative paths move with it
            self._now, self._moved = os.getcwd(), False
        key = (raw, self._now)
        if key not in self.used:
            if len(self.used) >= _MAX_USES:
                self._full = True  # past any sensible cell: the entry is not stored
                return
            self.used[key] = kind

    def event(self, name: str, args: tuple[Any, ...]) -> None:
        """One audited event other than ``open`` (which :func:`_hook` handles inline) while the cell runs."""
        if name == "os.chdir":
            self._moved = True  # the directory is read again at the next event, after the change
            return
        frame = sys._getframe(2)
        if _import_machinery(frame):
            return
        filename = frame.f_code.co_filename
        if name in ("os.listdir", "os.scandir"):
            if filename.endswith(("glob.py", "pathlib.py")) and "glob" in frame.f_code.co_name:
                return  # glob's own listing: the pattern is recorded
            self._use(args[0] if args and args[0] is not None else ".", "dir")
        elif name == "glob.glob":
            pattern = args[0]
            if isinstance(pattern, (str, bytes)):
                self._use(pattern, "glob")
        elif name == "compile" and isinstance(args[0], (str, bytes)):
            own_cell = filename == self.cell_filename and frame.f_code.co_name == "<module>"
            if frame.f_globals is self.user_ns and not own_cell:  # the cell's own strings are analyzed
                qualname = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
                # show.__repr__.<locals>.<genexpr> -> show.__repr__ (the function the user wrote)
                where = ".".join(p for p in qualname.split(".") if not p.startswith("<")) or qualname
                if where not in self.compiled:
                    self.compiled.append(where)
                source = args[0] if isinstance(args[0], str) else args[0].decode("utf-8", "replace")
                if source not in self.sources:
                    self.sources.append(source)


def _hook(name: str, args: tuple[Any, ...]) -> None:
    """The audit hook: runs for every audited event of the process, so the common cases return first.

    No recorder (not in a miss): one global lookup.  ``open`` (per file a cell reads, thousands in
    some cells) is handled here inline, without a method call, a re-entrancy flag or an
    allocation beyond the path's key: nothing it calls raises an audited ``open``.
    """
    recorder = _active
    if recorder is None:
        return
    if name == "open":
        if recorder.thread != _get_ident():
            return  # another thread (sci_ext's background writer, a library's pool)
        try:
            raw = args[0]
            if recorder._moved:  # the cell changed directory: relative paths move with it
                recorder._now, recorder._moved = os.getcwd(), False
            key = (raw, recorder._now)
            used = recorder.used
            if key in used:
                return  # noted already: a path costs the net once per run, not once per open
            if raw.__class__ is str:
                if raw.startswith(_roots):  # type: ignore[arg-type]  # set before a recorder is active
                    return  # the installation, tool caches, sci_ext's own files: never inputs
                maybe_import = raw.endswith(_IMPORTED_SUFFIXES) or "-info" in raw
            elif isinstance(raw, int):
                return  # an fd: its path was noted when it was opened
            else:
                maybe_import = True
            # A file the import system could be opening (a module, its .pyc, a distribution's
            # metadata): ask the frame; a data file (.csv, .npy) needs no frame.
            if maybe_import and _import_machinery(sys._getframe(1)):
                return
            if len(used) >= _MAX_USES:
                recorder._full = True  # past any sensible cell: the entry is not stored
                return
            mode = args[1]
            writes = _WRITE_MODES.get(mode) if mode.__class__ is str else None
            if writes is None:
                writes = _writes(mode, args[2] if len(args) > 2 else 0)
            if writes:
                used[key] = "write"
                return
            # The file as the cell reads it: the audit event comes before the open, so this is
            # the content the cell is about to read (a rewrite later in the cell is a change).
            try:
                st = _stat(raw)
                used[key] = (st.st_size, st.st_mtime_ns)
            except (OSError, ValueError, TypeError):
                used[key] = None
        except Exception:  # noqa: S110  # nosec B110  # the net must never break the user's cell
            pass
        return
    if name not in _EVENTS or recorder._busy or recorder.thread != _get_ident():
        return
    recorder._busy = True
    try:
        recorder.event(name, args)
    except Exception:  # noqa: S110  # nosec B110  # the net must never break the user's cell
        pass
    finally:
        recorder._busy = False


_EVENTS = frozenset({"open", "os.listdir", "os.scandir", "glob.glob", "compile", "os.chdir"})
#: Distinct paths one run notes at most (a cell opening the same few files a million times notes them once).
_MAX_USES = 20 * MAX_FILES
#: Modules that look for modules and distributions on sys.path: what they read is not the cell's data.
_IMPORT_MACHINERY = ("importlib.", "importlib_metadata", "importlib_resources", "pkgutil", "pkg_resources", "zipimport")


#: A module's files: on sys.path, never inputs (keyed by the module's version or source).
_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pth")
#: Files the import system opens: modules, their bytecode and extensions, path files, archives.
_IMPORTED_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".pth", ".zip", ".egg", ".whl", ".typed")


def _import_machinery(frame: Any) -> bool:
    """Is ``frame`` (the caller of an audited call) the import system or a distribution lookup?

    Imports (``importlib._bootstrap*``, ``zipimport``) are keyed by module version or source
    already.  Finding modules and distributions (a library asking ``importlib.metadata`` for a
    version lists every sys.path directory) is not the cell's data: the listing of a sys.path
    directory (the kernel's start directory, a checkout on PYTHONPATH) changes with every
    unrelated file written there.
    """
    module = frame.f_globals.get("__name__")
    return isinstance(module, str) and module.startswith(_IMPORT_MACHINERY)


def install() -> None:
    """Install the audit hook (once per process: audit hooks cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


_get_ident = threading.get_ident
_stat = os.stat
#: open() modes seen: do they write?  (A handful of strings; remembered, as this runs per file.)
_WRITE_MODES: dict[str, bool] = {}


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str):
        writes = _WRITE_MODES.get(mode)
        if writes is None:
            writes = any(c in mode for c in "wax+")
            if len(_WRITE_MODES) < 64:
                _WRITE_MODES[mode] = writes
        return writes
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


def _set_roots() -> None:
    global _roots
    _roots = _ignored_roots() + _sci_ext_roots()


def _ignored(path: str) -> bool:
    """Files of the installation, of tool caches and of sci_ext itself are never inputs."""
    if _roots is None:
        _set_roots()
    module_file = path.endswith(_MODULE_SUFFIXES)
    if module_file and any(path.startswith(os.path.join(p, "")) for p in sys.path if p):
        return True  # a module's source: keyed by its version or its code
    return path.startswith(_roots) or path in ("/etc/localtime",)  # type: ignore[arg-type]


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
    if kind == "glob":
        import glob

        return [kind, 0, 0, _listing_digest(glob.glob(path, root_dir=cwd), "glob")]
    if cwd is not None and not (os.path.isabs(path) if _NOT_POSIX else path.startswith("/")):
        path = os.path.join(cwd, path)
    try:
        st = os.stat(path)
    except OSError:
        return ["absent"]
    if kind == "dir":
        try:
            return [kind, 0, 0, _listing_digest(os.listdir(path), "listing")]
        except OSError:
            return ["absent"]
    digest = ""
    # Called once per file a miss read (thousands for some cells): no imports, no hasher unless racy.
    if st.st_size <= SMALL_FILE_BYTES and _now() - st.st_mtime_ns / 1e9 < RACY_SECONDS:
        try:
            digest = _digest(path)
        except OSError:
            return ["absent"]
    return [kind, st.st_size, st.st_mtime_ns, digest]


def _listing_digest(names: list[str], label: str) -> str:
    from ...core.cache.keys import ValueHasher

    hasher = ValueHasher()
    hasher.update(sorted(names), label)
    return hasher.digest()


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
