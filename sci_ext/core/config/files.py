"""Reading and writing config files: TOML parsing with locations, atomic writes.

Writes go through ``tomlkit`` so that comments and layout of an existing file are
kept; the file is replaced atomically (temp file, fsync, rename) under a file lock,
so a failed or concurrent write never leaves a half-written config behind.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "atomic_write_text",
    "find_key_line",
    "flatten_table",
    "join_dotted",
    "lock_path_for",
    "parse_toml",
    "read_toml",
    "split_dotted",
    "update_toml_text",
]


def read_toml(path: Path, *, trusted_only: bool = False, what: str = "config file") -> tuple[dict[str, Any], str]:
    """Parse ``path``; return the table and the text. Errors name the file and line.

    ``trusted_only`` (the user file and a discovered project file, issue 18): the bytes
    parsed are read from the very file that was checked, through one descriptor
    (:func:`~sci_ext.core.trust.read_private_file`: no symlink followed at the end, owner
    the user or root, not writable by others), after every directory above its real path
    was checked (:func:`~sci_ext.core.trust.check_ancestors`), so neither a symlink swapped
    to another user's file nor a directory renamed above it between a check and the read
    (the hot-reload watcher re-reads every few seconds) gets another user's settings in.
    """
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a TOML file", path=str(path))
    try:
        if trusted_only:
            from ..trust import UntrustedPathError, check_ancestors, check_trusted, read_private_file

            try:
                check_trusted(path, what=what)  # a symlink of another user is refused here
                real = Path(os.path.realpath(path))
                check_ancestors(real, what=what)
                text = read_private_file(real, what=what).decode("utf-8")
            except UntrustedPathError as exc:
                raise ConfigError(str(exc), path=str(path)) from None
        else:
            text = path.read_text(encoding="utf-8")
    except PermissionError:
        raise ConfigError(f"{path}: cannot read the file (permission denied)", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})", path=str(path)) from None
    return parse_toml(text, path), text


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """Parse TOML ``text`` that belongs to ``path``; errors name the file and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(match.group(1)) if match else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        where = f"{path} line {line}" if line else str(path)
        raise ConfigError(f"{where}: invalid TOML: {reason}", path=str(path), line=line) from None


def _quote_key(part: str) -> str:
    """``part`` as one segment of a dotted name: quoted (TOML basic string) when it holds a
    ``.`` or ``"``, is empty, or has surrounding spaces; as it is otherwise."""
    if "." in part or '"' in part or not part or part != part.strip():
        import json

        return json.dumps(part, ensure_ascii=False)
    return part


def join_dotted(parts: list[str] | tuple[str, ...]) -> str:
    """``["model_costs", "gpt-4.5", "input"]`` -> ``'model_costs."gpt-4.5".input'``."""
    return ".".join(_quote_key(part) for part in parts)


def split_dotted(dotted: str) -> list[str]:
    """The inverse of :func:`join_dotted`: split on dots outside double quotes."""
    import json

    parts: list[str] = []
    index, end = 0, len(dotted)
    while True:
        if dotted.startswith('"', index):
            try:
                part, index = json.JSONDecoder().raw_decode(dotted, index)
            except ValueError:
                raise ValueError(f"bad quoted key in {dotted!r}") from None
            parts.append(part)
        else:
            dot = dotted.find(".", index)
            if dot < 0:
                parts.append(dotted[index:])
                return parts
            parts.append(dotted[index:dot])
            index = dot
        if index >= end:
            return parts
        if dotted[index] != ".":
            raise ValueError(f"expected a '.' after a quoted key in {dotted!r}")
        index += 1


def flatten_table(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves.

    A key holding a ``.`` is quoted (``{"m": {"gpt-4.5": 1}}`` -> ``{'m."gpt-4.5"': 1}``),
    so :func:`split_dotted` gets the original path back.
    """
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{_quote_key(str(key))}"
        if isinstance(value, dict):
            out.update(flatten_table(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def find_key_line(text: str, dotted: str) -> int | None:
    """Line (1-based) where ``dotted`` (``section.sub.key``) is set in TOML ``text``.

    A best effort for error messages: it understands ``[table]`` headers and
    ``key = value`` lines, which is what config files are made of.
    """
    *tables, key = split_dotted(dotted)
    current: list[str] = []
    key_re = re.compile(rf"^\s*(?:\"{re.escape(key)}\"|{re.escape(key)})\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            current = [part.strip().strip('"') for part in header.group(1).split(".")]
            continue
        if current == tables and key_re.match(line):
            return number
        if current == [] and tables and re.match(rf"^\s*{re.escape('.'.join([*tables, key]))}\s*=", line):
            return number
    return None


def lock_path_for(path: Path) -> str:
    """The lock file guarding writes of ``path``, kept out of the user's project.

    Locks live in ``$XDG_STATE_HOME/sci_ext/locks`` (a 0700 directory in the user's
    home, not a shared ``/tmp``), named by a hash of the file's real path, so every
    writer of one file takes the same lock and no ``sci_ext.toml.lock`` litters a
    repository.
    """
    import hashlib

    from ..trust import locks_dir

    directory = locks_dir()
    digest = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:32]
    return str(directory / f"{digest}.lock")


def holds_secret_setting(text: str) -> bool:
    """Whether TOML ``text`` sets a ``secret=True`` setting (such a file must be 0600)."""
    from .registry import registered_sections
    from .schema import leaf_fields

    try:
        values = flatten_table(tomllib.loads(text))
    except tomllib.TOMLDecodeError:
        return False
    for name, cls in registered_sections().items():
        for key, spec in leaf_fields(cls).items():
            if spec.secret and values.get(f"{name}.{key}") is not None:
                return True
    return False


def atomic_write_text(path: Path, text: str, mode: int = 0o600, *, private: bool | None = None) -> None:
    """Replace ``path`` with ``text`` atomically; the old file stays if anything fails.

    An existing file keeps its permissions, and ``mode`` (0600) is the mode of a new
    one, whatever the umask; ``private`` (by default: a ``.toml`` file that holds a
    ``secret=True`` setting) makes the file 0600 in any case.  A missing directory is
    created 0700.  A symlink (a dotfiles checkout) stays a symlink: its target is the
    file replaced.
    """
    from filelock import FileLock

    from ..trust import atomic_write, ensure_private_dir

    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if private is None:
        private = path.suffix == ".toml" and holds_secret_setting(text)
    if not path.parent.exists():
        ensure_private_dir(path.parent)
    with FileLock(lock_path_for(path), timeout=30, mode=0o600):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            pass
        if private:
            mode = 0o600
        atomic_write(path, text, mode=mode, sync_dir=True)


def update_toml_text(text: str, values: dict[str, Any], remove: tuple[str, ...] = ()) -> str:
    """Set dotted ``values`` in TOML ``text``, keeping its comments and layout.

    Dotted names may quote a key holding a dot (``bfts.m."gpt-4.5"``, see :func:`join_dotted`).

    ``None`` removes a key (TOML has no null).  Keys in ``remove`` are deleted.
    """
    import tomlkit

    doc = tomlkit.parse(text) if text.strip() else tomlkit.document()
    for dotted in remove:
        *tables, key = split_dotted(dotted)
        container: Any = doc
        for name in tables:
            if name not in container:
                container = None
                break
            container = container[name]
        if container is not None and key in container:
            del container[key]
    for dotted, value in values.items():
        *tables, key = split_dotted(dotted)
        container = doc
        for name in tables:
            if name not in container:
                container[name] = tomlkit.table()
            container = container[name]
        if value is None:
            if key in container:
                del container[key]
        else:
            container[key] = value
    return tomlkit.dumps(doc)
