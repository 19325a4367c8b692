"""Where the configuration's layers come from, found without reading them (standard library only).

The configuration (:mod:`sci_ext.core.config`) merges the defaults, the user file, the
project file, ``SCI_EXT_<SECTION>__<KEY>`` variables and runtime overrides.  Importing
and building it costs a kernel about 15 ms of CPU, so a kernel's first cells should
not pay for it when nothing but the defaults could come out.  :func:`has_sources`
answers that question with a few ``stat`` calls: no user file, no ``sci_ext.toml``
where discovery would look, no setting variable means every value is its default
(runtime overrides exist only once something built the configuration).

Readers on a kernel's per-cell path (auto mode's ``cache.auto``, telemetry's
``monitoring.metrics_enabled``) ask :func:`only_defaults` first: it looks at most once per
:data:`PROBE_SECONDS` (a look walks up the directories: ~0.1 ms), as the hot reload of
config files does.  The configuration package reads its paths from here, so both always agree.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = [
    "ENV_PREFIX",
    "PROBE_SECONDS",
    "PROJECT_FILE",
    "has_sources",
    "is_setting_variable",
    "only_defaults",
    "project_dirs",
    "reset_probe",
    "user_config_path",
]

PROJECT_FILE = "sci_ext.toml"
ENV_PREFIX = "SCI_EXT_"
#: Seconds between two looks of :func:`only_defaults`: as often as the hot reload looks at the
#: files (``core.reload_interval_seconds``'s default; a unit test keeps them equal).
PROBE_SECONDS = 2.0
_next_probe = 0.0  # time.monotonic() of the next look
_found = False  # what the last look found


def user_config_path() -> Path:
    """``$XDG_CONFIG_HOME/sci_ext/config.toml`` (``~/.config/sci_ext/config.toml``).

    ``SCI_EXT_CONFIG_FILE`` names another file: ``jupyter sci deploy`` starts its
    candidate server on the new slot this way, without touching the live file.
    """
    explicit = os.environ.get("SCI_EXT_CONFIG_FILE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME")
    root = Path(base) if base else Path.home() / ".config"
    return root / "sci_ext" / "config.toml"


def project_dirs(start: Path | None = None, home: Path | None = None) -> Iterator[Path]:
    """The directories where the project file is looked for, nearest first.

    ``start`` (default: the cwd) and its parents, up to and including the first that is
    ``home`` (default: ``$HOME``) or a repository root (holds ``.git``), never across a
    file-system boundary (git's ``safe.directory`` rule; see :mod:`.config.discovery`).
    """
    here = Path(os.path.realpath(start or Path.cwd()))
    home_dir = Path(os.path.realpath(home or Path.home()))
    try:
        device = os.stat(here).st_dev
    except OSError:
        return
    for directory in (here, *here.parents):
        try:
            if os.stat(directory).st_dev != device:
                return  # a mount point: do not cross file systems
        except OSError:
            return
        yield directory
        if directory == home_dir or (directory / ".git").exists():
            return


def is_setting_variable(name: str) -> bool:
    """True for ``SCI_EXT_<SECTION>__<KEY>`` (a setting), not ``SCI_EXT_VAULT_PASSPHRASE`` and the like."""
    return name.startswith(ENV_PREFIX) and "__" in name[len(ENV_PREFIX) :]


def has_sources(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Could any layer but the defaults set something?  False means the configuration is the defaults.

    True when the user file exists, a ``sci_ext.toml`` exists where discovery looks
    (trusted or not: the configuration decides, and warns), or a setting variable is set.
    """
    env = os.environ if environ is None else environ
    if any(is_setting_variable(name) for name in env):
        return True
    if os.path.lexists(user_config_path()):
        return True
    return any(os.path.lexists(directory / PROJECT_FILE) for directory in project_dirs(cwd))


def only_defaults() -> bool:
    """True while nothing has built the configuration and no layer but the defaults has anything.

    A reader may then use a setting's default instead of importing and building the
    configuration.  Sources are looked for at most once per :data:`PROBE_SECONDS`, so a config
    file or variable that appears counts from the first call at least that long after the last
    look; once something has built the configuration (``%sci_config``, a feature, the monitor's
    first tick) this is False and readers read it.
    """
    global _next_probe, _found
    config = sys.modules.get("sci_ext.core.config")  # not imported: nothing has built it
    if config is not None and config.current_config_manager() is not None:
        return False
    now = time.monotonic()
    if now >= _next_probe:
        _found = has_sources()
        _next_probe = now + PROBE_SECONDS
    return not _found


def reset_probe() -> None:
    """Look again at the next :func:`only_defaults` (the process-wide configuration was replaced)."""
    global _next_probe, _found
    _next_probe, _found = 0.0, False
