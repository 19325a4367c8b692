"""Which project file is trusted, and what a project file may not change.

Discovery (git's ``safe.directory`` rule, CVE-2022-24765): the nearest
``sci_ext.toml`` in the working directory or its parents, looking no further than
the first of

* the repository root (a directory holding ``.git``): a file above the project's
  repository belongs to something else;
* ``$HOME``: directories above a home (``/home``, ``/``) belong to other users or
  the system, never to one of the user's projects;
* a file-system boundary (a mount point), as git does by default.

The file found is used only if it and its directory belong to the current user
(or root) and neither is writable by group or others; otherwise it is ignored with
one warning line, unless its directory is listed in ``core.trusted_dirs`` (read
from the user file or the environment only; ``*`` trusts every directory).

A project file may ask for a setting that lowers protection, but it is not applied
(:data:`PROTECTED_SETTINGS`); the user sees one line saying so and how to accept it.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..config_sources import project_dirs
from ..trust import UntrustedPathError, check_ancestors, describe, trusted_owner

__all__ = ["PROTECTED_SETTINGS", "find_trusted_project_file", "protected_notice", "warn_once"]

log = logging.getLogger("sci_ext.config")

#: Settings a project file cannot set: they choose where secrets, pickles and the audit
#: trail go, or turn a protection off.  ``security.redact_outputs`` only when false.
PROTECTED_SETTINGS = frozenset(
    {
        "security.redact_outputs",
        "security.audit_path",
        "security.vault_path",
        "security.key_dir",
        "security.key_source",
        "security.max_auth_failures_per_minute",
        "security.lockout_seconds",
        "core.state_dir",
        "core.trusted_dirs",
        "cache.dir",
        "cache.redis_url",
        "cache.redis_signing_key",
        "breaker.redis_url",
    }
)

_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Show ``message`` on stderr once per process (the file watcher re-reads every few seconds).

    Like git's ``safe.directory`` warning it goes to stderr (a kernel shows it in the
    cell's output, a CLI on the terminal); it is also logged at INFO for log files.
    """
    if message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr, flush=True)
        log.info("%s", message)


def _is_trusted_dir(directory: Path, trusted_dirs: Iterable[str]) -> bool:
    for entry in trusted_dirs:
        if entry.strip() == "*":
            return True
        try:
            if Path(os.path.realpath(os.path.expanduser(entry.strip()))) == directory:
                return True
        except (OSError, ValueError):
            continue
    return False


def _untrusted_reason(candidate: Path) -> str | None:
    """Why ``candidate`` (a project file) is not trusted; ``None`` when it is."""
    directory = candidate.parent
    for path, kind in ((candidate, "file"), (directory, "directory")):
        try:
            info = os.stat(path)
        except OSError as exc:
            return f"{path} cannot be checked ({exc.strerror})"
        mode = stat.S_IMODE(info.st_mode)
        if not trusted_owner(info.st_uid):
            return f"{kind} {path} belongs to another user ({describe(info)})"
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{kind} {path} is writable by group or others ({describe(info)})"
    try:  # issue 18: a directory above that another user could rename would let them swap the file
        check_ancestors(candidate, what="project file")
    except UntrustedPathError as exc:
        return str(exc)
    return None


def find_trusted_project_file(
    start: Path | None,
    file_name: str,
    trusted_dirs: Iterable[str] = (),
    *,
    home: Path | None = None,
) -> Path | None:
    """The project file for ``start`` (default: the cwd), or ``None``; see the module docstring."""
    trusted = list(trusted_dirs)
    for directory in project_dirs(start, home):
        candidate = directory / file_name
        if os.path.lexists(candidate):
            reason = None if _is_trusted_dir(directory, trusted) else _untrusted_reason(candidate)
            if reason is None:
                return candidate
            warn_once(
                f"sci_ext: ignoring {candidate}: {reason}. Fix: if you trust it, add "
                f'"{directory}" to core.trusted_dirs in your user config file '
                f"(or SCI_EXT_CORE__TRUSTED_DIRS={directory})"
            )
            return None
    return None


def protected_notice(path: Path | str, dotted: str, value: Any, user_file: Path) -> str | None:
    """The one line shown when project file ``path`` asks for protected setting ``dotted``; ``None`` if allowed."""
    if dotted not in PROTECTED_SETTINGS:
        return None
    if dotted == "security.redact_outputs" and value is not False and str(value).strip().lower() not in _FALSE:
        return None  # asking for redaction (the default) lowers nothing
    env = "SCI_EXT_" + "__".join(part.upper() for part in dotted.split("."))
    if dotted == "core.trusted_dirs":
        return (
            f"sci_ext: {path}: core.trusted_dirs not applied: it is read only from the user file "
            f"({user_file}) or the environment ({env})"
        )
    shown = "<hidden>" if "redis" in dotted or "key" in dotted else repr(value)
    return (
        f"sci_ext: {path}: {dotted} = {shown} not applied: a project file cannot change this protection. "
        f"To accept it, set it in {user_file}, in the environment ({env}) or with `%sci_config {dotted}=...`"
    )


_FALSE = {"0", "false", "no", "off"}
