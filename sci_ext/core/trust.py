"""The trust boundary: every directory and file sci_ext reads state or config from, or writes to.

One rule, OpenSSH's and git's (``safe.directory``, CVE-2022-24765): a directory or
file sci_ext reads must belong to the current user (or root, for system-wide
locations) and must not be writable by group or others; every directory above it
must belong to the user or root and, if others can write it, be sticky (``/tmp``),
so nobody else can swap a component of the path.  A refusal is one line naming the
path, its owner and mode, and the command that fixes it (:class:`UntrustedPathError`).

What sci_ext creates is private whatever the umask:

* :func:`ensure_private_dir` creates every missing component with mode 0700 (not
  only the last one, as ``Path.mkdir(parents=True)`` does) and checks the result;
* :func:`open_private` / :func:`create_private_file` open files with
  ``O_NOFOLLOW`` (a planted symlink is refused) and mode 0600; :func:`atomic_write`
  (the one atomic-write helper: temp file, fsync, chmod, rename, optional directory
  fsync) replaces a file; :func:`private_temp_dir` and :func:`connect_sqlite` cover
  temporary directories and SQLite files;
* :func:`pin_private_dir` remembers a long-lived directory's identity (device, inode,
  owner) and :meth:`PinnedDir.recheck` refuses it once it was swapped, removed, turned
  into a symlink or opened to others (review 2026-12-b R4: the metrics dir, the LLM
  history, the state store are re-checked before each compaction and by health).

No other module of sci_ext creates a directory or opens a path for writing:
``tests/unit/test_private_dir_rule.py`` walks every module's syntax tree and fails on
``mkdir``/``makedirs``/``mkstemp``/``open(..., "w")``/... outside this file.

:func:`state_subdir` (and :func:`logs_dir`, :func:`metrics_dir`, :func:`locks_dir`)
give the private subdirectories of ``core.state_dir`` that features write into; the
caller passes ``core.state_dir`` (this module never reads the configuration).
This module is small and imports only the standard library (and the exception
classes of :mod:`sci_ext.core.errors`, themselves standard-library only).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import SecurityError

__all__ = [
    "PinnedDir",
    "UntrustedPathError",
    "atomic_write",
    "check_ancestors",
    "check_trusted",
    "connect_sqlite",
    "create_private_file",
    "describe",
    "ensure_private_dir",
    "locks_dir",
    "logs_dir",
    "metrics_dir",
    "open_private",
    "pin_private_dir",
    "pinned_problems",
    "private_temp_dir",
    "read_private_file",
    "state_subdir",
    "trusted_owner",
]

#: Bits that let group or others change a file or the entries of a directory.
_SHARED_WRITE = stat.S_IWGRP | stat.S_IWOTH
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class UntrustedPathError(SecurityError, PermissionError):
    """A path sci_ext would read or write is not private to the current user; the message says the fix."""


def _me() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else -1


def trusted_owner(uid: int) -> bool:
    """Whether files of ``uid`` are trusted: the current user or root."""
    return not hasattr(os, "geteuid") or uid in (_me(), 0)


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def describe(info: os.stat_result) -> str:
    """``owner alice (uid 1001), mode 0777`` for messages."""
    return f"owner {_user_name(info.st_uid)} (uid {info.st_uid}), mode {stat.S_IMODE(info.st_mode):04o}"


def _me_name() -> str:
    return _user_name(_me())


def _problem(path: Path, info: os.stat_result, *, directory: bool) -> str | None:
    """Why ``path`` (stat ``info``) is not trusted, with the fix; ``None`` when it is."""
    if not trusted_owner(info.st_uid):
        return (
            f"{path} belongs to another user ({describe(info)}); refusing to use it. "
            f"Fix: remove it or `chown {_me_name()} {path}` if it is yours"
        )
    if stat.S_IMODE(info.st_mode) & _SHARED_WRITE:
        wanted = "700" if directory else "600"
        return (
            f"{path} is writable by group or others ({describe(info)}); refusing to use it. Fix: chmod {wanted} {path}"
        )
    return None


def check_trusted(path: str | os.PathLike[str], *, what: str = "") -> os.stat_result:
    """Refuse ``path`` unless it (and a symlink leading to it) belongs to the user or root and only they can write it.

    Returns the ``stat`` of what the path leads to.  ``what`` prefixes the message
    (``"config file"``).  Raises :class:`UntrustedPathError` or ``FileNotFoundError``.
    """
    path = Path(path)
    prefix = f"{what} " if what else ""
    link = os.lstat(path)
    if stat.S_ISLNK(link.st_mode) and not trusted_owner(link.st_uid):
        raise UntrustedPathError(
            f"{prefix}{path} is a symlink owned by another user ({describe(link)}); refusing to follow it. "
            f"Fix: remove it"
        )
    info = os.stat(path)
    problem = _problem(path, info, directory=stat.S_ISDIR(info.st_mode))
    if problem:
        raise UntrustedPathError(prefix + problem)
    return info


def check_ancestors(path: str | os.PathLike[str], *, what: str = "") -> None:
    """Refuse ``path`` if a directory above it could be changed by another user.

    Every ancestor of the real path must belong to the user or root, and one that
    group or others can write must be sticky (like ``/tmp``: nobody can rename
    another user's entries there).
    """
    prefix = f"{what} " if what else ""
    real = Path(os.path.realpath(path))
    for parent in real.parents:
        try:
            info = os.stat(parent)
        except OSError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if not trusted_owner(info.st_uid):
            raise UntrustedPathError(
                f"{prefix}{path}: the directory {parent} above it belongs to another user ({describe(info)}), "
                f"who could replace it. Fix: use a path under your home directory"
            )
        if mode & _SHARED_WRITE and not mode & stat.S_ISVTX:
            raise UntrustedPathError(
                f"{prefix}{path}: the directory {parent} above it is writable by group or others and not sticky "
                f"({describe(info)}). Fix: chmod go-w {parent}"
            )


def ensure_private_dir(path: str | os.PathLike[str], *, what: str = "directory") -> Path:
    """Create ``path`` and every missing parent with mode 0700 (whatever the umask); check it is private.

    An existing directory must belong to the user (or root) and not be writable by
    group or others; read bits of group/others on a directory of the user are
    removed (0755 -> 0700).  Directories above it are checked with
    :func:`check_ancestors`.  Returns the path; raises :class:`UntrustedPathError`.
    """
    path = Path(path).expanduser()
    missing: list[Path] = []
    probe = path
    while True:
        try:
            os.lstat(probe)
            break
        except FileNotFoundError:
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
    if missing:  # refuse before creating anything under a directory another user controls
        check_ancestors(missing[-1], what=what)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # made meanwhile by someone: checked below like any existing directory
        os.chmod(directory, 0o700)  # a umask such as 0o277 removes owner bits too
    info = check_trusted(path, what=what)
    if not stat.S_ISDIR(info.st_mode):
        raise UntrustedPathError(f"{what} {path} is not a directory. Fix: remove it or choose another path")
    check_ancestors(path, what=what)
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == _me():
        os.chmod(path, 0o700)
    return path


def state_subdir(name: str, state_dir: str | os.PathLike[str]) -> Path:
    """The private directory ``<state_dir>/<name>`` (created 0700, checked); pass ``core.state_dir``."""
    ensure_private_dir(state_dir, what="core.state_dir")
    return ensure_private_dir(Path(state_dir).expanduser() / name, what="state directory")


def logs_dir(state_dir: str | os.PathLike[str]) -> Path:
    """``<state_dir>/logs``, private: where sci_ext's JSON log goes."""
    return state_subdir("logs", state_dir)


def metrics_dir(state_dir: str | os.PathLike[str]) -> Path:
    """``<state_dir>/metrics``, private: where metric files shared by processes go."""
    return state_subdir("metrics", state_dir)


def locks_dir() -> Path:
    """``$XDG_STATE_HOME/sci_ext/locks``: lock files of config writes (never beside the file)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    ensure_private_dir(Path(base) / "sci_ext", what="state directory")
    return ensure_private_dir(Path(base) / "sci_ext" / "locks", what="lock directory")


def _check_fd(fd: int, path: Path, what: str) -> None:
    info = os.fstat(fd)
    problem = _problem(path, info, directory=False)
    if problem is None and not stat.S_ISREG(info.st_mode):
        problem = f"{path} is not a regular file; refusing to use it. Fix: remove it"
    if problem:
        os.close(fd)
        raise UntrustedPathError(f"{what} {problem}" if what else problem)
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == _me():
        os.fchmod(fd, 0o600)


def _nofollow_error(path: Path, what: str, exc: OSError) -> UntrustedPathError:
    prefix = f"{what} " if what else ""
    return UntrustedPathError(
        f"{prefix}{path} is a symlink ({exc.strerror}); refusing to follow it. Fix: remove it (rm {path})"
    )


def open_private(path: str | os.PathLike[str], flags: int = os.O_RDWR, *, what: str = "") -> int:
    """Open (creating, mode 0600) a private file without following a symlink; return the fd.

    The file must belong to the user (or root) and not be writable by group or
    others; read bits of group/others on a file of the user are removed.
    """
    path = Path(path)
    try:
        fd = os.open(path, flags | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symlink
            raise _nofollow_error(path, what, exc) from None
        raise
    _check_fd(fd, path, what)
    return fd


def read_private_file(path: str | os.PathLike[str], *, what: str = "") -> bytes:
    """The bytes of ``path``, read without following a symlink from a file only the user (or root) can write.

    ``FileNotFoundError`` when missing; :class:`UntrustedPathError` for a symlink, a file of
    another user or one group/others can write.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a symlink
            raise _nofollow_error(path, what, exc) from None
        raise
    info = os.fstat(fd)
    problem = _problem(path, info, directory=False)
    if problem is None and not stat.S_ISREG(info.st_mode):
        problem = f"{path} is not a regular file; refusing to use it. Fix: remove it"
    if problem:
        os.close(fd)
        raise UntrustedPathError(f"{what} {problem}" if what else problem)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def create_private_file(path: str | os.PathLike[str], *, what: str = "") -> int:
    """Create ``path`` exclusively (``O_EXCL``, no symlink followed), mode 0600; return a write fd."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes | str,
    *,
    mode: int = 0o600,
    encoding: str = "utf-8",
    sync_dir: bool = False,
    replace: Callable[[str, Path], Any] | None = None,
) -> None:
    """Replace ``path`` with ``data`` atomically: the one atomic-write helper of sci_ext.

    A temp file beside ``path`` (``mkstemp``: 0600, ``O_EXCL``, never a planted
    symlink), written, flushed and fsynced, given ``mode``, renamed over ``path``;
    with ``sync_dir`` the directory is fsynced too, so the rename survives a power cut.
    On any error the temp file is removed and ``path`` is unchanged.  ``str`` data is
    encoded with ``encoding``.  ``replace`` stands in for ``os.replace`` (fault-injection
    tests kill the process at the rename).
    """
    path = Path(path)
    raw = data.encode(encoding) if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        (replace or os.replace)(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        with contextlib.suppress(OSError):  # not every file system can fsync a directory
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def private_temp_dir(prefix: str = "sci_ext-") -> Path:
    """A fresh private temporary directory (``mkdtemp``: 0700, owned by the user)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o700)
    return path


def connect_sqlite(path: str | os.PathLike[str], *, what: str = "database", **kwargs: Any) -> Any:
    """``sqlite3.connect`` to a private database file: its directory made private, the file 0600, no symlink.

    The file is created (or checked) with :func:`open_private` before SQLite opens it,
    so neither a planted symlink nor the umask decides its mode.
    """
    import sqlite3  # only the callers that keep a database pay for the import

    path = Path(path).expanduser()
    ensure_private_dir(path.parent, what=f"{what} directory")
    os.close(open_private(path, os.O_RDWR, what=what))
    return sqlite3.connect(str(path), **kwargs)


class PinnedDir:
    """A private directory a long-lived process keeps using, pinned to its identity when it was made.

    :meth:`recheck` (``lstat``: owner, mode, device and inode) raises
    :class:`UntrustedPathError` naming what changed once another user swapped the
    directory (or a component above it), removed it, or made it writable by others.
    """

    def __init__(self, path: str | os.PathLike[str], *, what: str = "directory") -> None:
        self.path = ensure_private_dir(path, what=what)
        self.what = what
        info = os.lstat(self.path)
        if not stat.S_ISDIR(info.st_mode):  # a symlink: its target could be changed under us
            raise UntrustedPathError(
                f"{what} {self.path} is not a directory but a symlink; refusing to pin it. "
                "Fix: point the setting at the real directory"
            )
        self.identity = (info.st_dev, info.st_ino, info.st_uid)

    def recheck(self) -> Path:
        """The path, if it still is the directory pinned; else :class:`UntrustedPathError` with the reason."""
        path, what = self.path, self.what
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise UntrustedPathError(
                f"{what} {path} was removed or renamed since it was checked; refusing to recreate it "
                "while running. Fix: restart the process"
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise UntrustedPathError(
                f"{what} {path} is no longer a directory ({describe(info)}); it was replaced. Fix: remove it "
                "and restart the process"
            )
        if (info.st_dev, info.st_ino, info.st_uid) != self.identity:
            raise UntrustedPathError(
                f"{what} {path} was replaced by another directory ({describe(info)}, inode {info.st_ino}, "
                f"was inode {self.identity[1]}); refusing to use it. Fix: remove it and restart the process"
            )
        problem = _problem(path, info, directory=True)
        if problem:
            raise UntrustedPathError(f"{what} {problem}")
        return path


#: Every directory pinned in this process and still held by its user (weak: a closed store drops out).
_PINNED: weakref.WeakValueDictionary[str, PinnedDir] = weakref.WeakValueDictionary()


def pin_private_dir(path: str | os.PathLike[str], *, what: str = "directory") -> PinnedDir:
    """:func:`ensure_private_dir` ``path`` and pin it (:class:`PinnedDir`) for later re-checks.

    The pin is also registered for :func:`pinned_problems` (the ``private_dirs`` health
    check) for as long as the caller keeps it.
    """
    pinned = PinnedDir(path, what=what)
    _PINNED[str(pinned.path)] = pinned
    return pinned


def pinned_problems() -> tuple[int, list[str]]:
    """``(directories re-checked, problems)`` for every pinned directory still in use.

    A directory removed since is dropped (it is re-created privately on next use); one
    swapped for another, made a symlink or opened to others is a problem, with the reason.
    """
    problems: list[str] = []
    pins = list(_PINNED.items())
    for key, pinned in pins:
        if not os.path.lexists(pinned.path):
            _PINNED.pop(key, None)
            continue
        try:
            pinned.recheck()
        except OSError as exc:
            problems.append(str(exc))
    return len(pins), problems
