"""The installed version of the distribution that provides a module, without scanning the environment.

``importlib.metadata.packages_distributions()`` reads the file list of every
installed distribution: seconds in a research environment with hundreds of
packages, on every kernel restart.  :func:`find_version` looks only where the
module is:

1. the standard library (``sys.stdlib_module_names``): ``stdlib-3.11``;
2. the directory that holds the module (found with ``importlib.util.find_spec``,
   which imports nothing): a ``<name>-<version>.dist-info`` there whose name is
   the module's, checked against its ``top_level.txt`` or ``RECORD``;
3. otherwise an index of that one directory (module name -> distribution and
   version, from each distribution's ``top_level.txt`` or ``RECORD``), kept as
   JSON in a private directory under ``core.state_dir`` and rebuilt when the
   directory's modification time changes (a package installed or removed);
4. the module's ``__version__`` if it is imported, else ``''`` (not versioned:
   a local module, whose code is then hashed instead).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["find_version", "index_dir", "site_dir_of"]

#: Bump when the index file's layout changes.
INDEX_FORMAT = 1
_META_SUFFIXES = (".dist-info", ".egg-info")
_DIST_DIR = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py\d.*)?\.(?:dist|egg)-info$")


def _normal(name: str) -> str:
    """PEP 503 normal form (``Foo_Bar.baz`` -> ``foo-bar-baz``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def site_dir_of(top: str) -> Path | None:
    """The directory holding top-level module ``top`` (its package's parent), importing nothing."""
    module = sys.modules.get(top)
    spec = getattr(module, "__spec__", None) if module is not None else None
    if spec is None:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError, AttributeError):
            return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:  # a package: the directory above it
        return Path(locations[0]).parent
    origin = spec.origin
    if not origin or origin in ("built-in", "frozen") or not os.path.isabs(origin):
        return None
    return Path(origin).parent


def _read_version(meta_dir: Path) -> str:
    """The ``Version:`` header of a distribution's METADATA (or PKG-INFO)."""
    for name in ("METADATA", "PKG-INFO"):
        try:
            with open(meta_dir / name, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if line.startswith("Version:"):
                        return line.partition(":")[2].strip()
                    if not line.strip():
                        break  # end of the headers
        except OSError:
            continue
    return ""


def _top_levels(meta_dir: Path) -> set[str]:
    """The top-level modules a distribution installs (``top_level.txt``, else its ``RECORD``)."""
    try:
        text = (meta_dir / "top_level.txt").read_text(encoding="utf-8", errors="replace")
        return {line.strip().replace("/", ".").partition(".")[0] for line in text.splitlines() if line.strip()}
    except OSError:
        pass
    tops: set[str] = set()
    try:
        text = (meta_dir / "RECORD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return tops
    for line in text.splitlines():
        path = line.rsplit(",", 2)[0].strip('"')
        if not path or path.startswith(("..", "/")):
            continue
        first = path.split("/", 1)[0]
        if first.endswith(_META_SUFFIXES) or first == "__pycache__":
            continue
        if "/" in path:
            tops.add(first)
        elif first.endswith((".py", ".so", ".pyd")):
            tops.add(first.split(".", 1)[0])
    return tops


def _meta_dirs(directory: Path) -> list[str]:
    try:
        return sorted(e for e in os.listdir(directory) if e.endswith(_META_SUFFIXES))
    except OSError:
        return []


def _by_name(top: str, directory: Path, entries: list[str]) -> str | None:
    """The version of the distribution named like ``top`` in ``directory``, if it provides ``top``."""
    wanted = _normal(top)
    for entry in entries:
        match = _DIST_DIR.match(entry)
        if match is None or _normal(match.group("name")) != wanted:
            continue
        meta = directory / entry
        if _provides(meta, top):
            return _read_version(meta) or match.group("version")
    return None


def _provides(meta_dir: Path, top: str) -> bool:
    """Does the distribution install module ``top``?  (A substring search, not a parse of RECORD.)"""
    try:
        text = (meta_dir / "top_level.txt").read_text(encoding="utf-8", errors="replace")
        return top in {line.strip() for line in text.splitlines()}
    except OSError:
        pass
    try:
        text = "\n" + (meta_dir / "RECORD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(f"\n{top}{end}" in text for end in ("/", ".py,", ".cpython", ".abi3", ".so,", ".pyd,"))


def _state_dir() -> Path | None:
    try:
        from ..config import get_config

        return Path(get_config().core.state_dir).expanduser() / "distributions"
    except Exception:
        return None


def _index_file(directory: Path) -> Path | None:
    base = _state_dir()
    if base is None:
        return None
    import hashlib

    digest = hashlib.sha256(str(directory).encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return base / f"{digest}.json"


def _load_index(path: Path, directory: Path, mtime_ns: int) -> dict[str, list[str]] | None:
    try:
        info = path.stat()
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return None  # written by someone else: not trusted
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("format") != INDEX_FORMAT
        or data.get("dir") != str(directory)
        or data.get("mtime_ns") != mtime_ns
        or not isinstance(data.get("modules"), dict)
    ):
        return None
    return data["modules"]


def _save_index(path: Path, directory: Path, mtime_ns: int, modules: dict[str, list[str]]) -> None:
    from ..trust import atomic_write
    from .store import ensure_private_dir

    try:
        ensure_private_dir(path.parent)
        text = json.dumps({"format": INDEX_FORMAT, "dir": str(directory), "mtime_ns": mtime_ns, "modules": modules})
        atomic_write(path, text)
    except Exception:  # a cache index: never worth failing the caller
        return


_MEMORY: dict[tuple[str, int], dict[str, list[str]]] = {}


def index_dir(directory: Path, entries: list[str] | None = None) -> dict[str, list[str]]:
    """``{module: [distribution, version]}`` for one directory (cached in memory and on disk)."""
    try:
        mtime_ns = os.stat(directory).st_mtime_ns
    except OSError:
        return {}
    memo = _MEMORY.get((str(directory), mtime_ns))
    if memo is not None:
        return memo
    path = _index_file(directory)
    modules = _load_index(path, directory, mtime_ns) if path is not None else None
    if modules is None:
        modules = {}
        for entry in entries if entries is not None else _meta_dirs(directory):
            meta = directory / entry
            match = _DIST_DIR.match(entry)
            version = _read_version(meta) or (match.group("version") if match else "")
            name = match.group("name") if match else entry.rsplit(".", 1)[0]
            for top in sorted(_top_levels(meta)):
                modules.setdefault(top, [name, version])
        if path is not None:
            _save_index(path, directory, mtime_ns, modules)
    _MEMORY[(str(directory), mtime_ns)] = modules
    return modules


def find_version(top: str) -> str:
    """The version of the distribution providing top-level module ``top`` (``''`` if none)."""
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return "stdlib-" + ".".join(map(str, sys.version_info[:2]))
    directory = site_dir_of(top)
    if directory is not None:
        entries = _meta_dirs(directory)
        if entries:
            found = _by_name(top, directory, entries)
            if found is not None:
                return found
            hit = index_dir(directory, entries).get(top)
            if hit:
                return str(hit[1])
    module: Any = sys.modules.get(top)
    version = getattr(module, "__version__", None)
    return version if isinstance(version, str) else ""
