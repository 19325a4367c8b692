"""The registry of config sections and where config files live."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from pathlib import Path

from ..config_sources import PROJECT_FILE, user_config_path
from ..errors import ConfigError
from .sections import BUILTIN_SECTIONS

__all__ = ["PROJECT_FILE", "find_project_file", "register_section", "registered_sections", "user_config_path"]

# Domain sections (rag, bfts) add themselves with register_section, as a third party does.
_SECTIONS: dict[str, type] = dict(BUILTIN_SECTIONS)
_SECTIONS_LOCK = threading.Lock()


def register_section(name: str, cls: type, *, replace: bool = False) -> None:
    """Register a third-party config section ``name`` backed by dataclass ``cls``.

    Its fields are validated like the built-in ones (use
    :func:`sci_ext.core.config.setting` for docs and ranges) and it can be set from
    files, ``SCI_EXT_<NAME>__<KEY>`` variables and ``%sci_config``.
    """
    if not name.isidentifier() or name != name.lower():
        raise ConfigError(f"section name {name!r} must be a lower-case identifier")
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"section {name!r}: {cls!r} is not a dataclass")
    with _SECTIONS_LOCK:
        if name in _SECTIONS and not replace and _SECTIONS[name] is not cls:
            raise ConfigError(f"section {name!r} is already registered (pass replace=True)")
        _SECTIONS[name] = cls


def registered_sections() -> dict[str, type]:
    """A copy of the registry: section name -> dataclass."""
    with _SECTIONS_LOCK:
        return dict(_SECTIONS)


def find_project_file(start: Path | None = None, trusted_dirs: Iterable[str] = ()) -> Path | None:
    """The nearest trusted ``sci_ext.toml`` in ``start`` (default: cwd) or its parents.

    Discovery stops at the repository root, ``$HOME`` or a file-system boundary; a file
    another user could have written is ignored with one warning line unless its
    directory is in ``trusted_dirs`` (see :mod:`.discovery`).
    """
    from .discovery import find_trusted_project_file

    return find_trusted_project_file(start, PROJECT_FILE, trusted_dirs)
