"""The layered configuration manager.

Five layers merge key by key, later wins: defaults, the user file, the project
file, the environment and runtime overrides.  Every leaf value remembers which
layer (and which file or variable) it came from.  A candidate configuration is
built and validated completely before it replaces the current one, so a bad file,
variable or override never replaces a good configuration.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config_sources import ENV_PREFIX, is_setting_variable
from ..errors import ConfigError
from .files import atomic_write_text, find_key_line, flatten_table, parse_toml, read_toml, update_toml_text
from .model import Config, ConfigEvent, Source, Subscriber, suggest
from .registry import (
    PROJECT_FILE,
    find_project_file,
    register_section,
    registered_sections,
    user_config_path,
)
from .schema import FieldSpec, build_section, coerce, flatten_instance, leaf_fields

__all__ = [
    "LAYERS",
    "PROJECT_FILE",
    "SCHEMA_VERSION",
    "Config",
    "ConfigEvent",
    "ConfigManager",
    "Source",
    "find_project_file",
    "register_section",
    "registered_sections",
    "user_config_path",
]

log = logging.getLogger("sci_ext.config")

#: Version of the config file layout written by this release (``schema_version``).
SCHEMA_VERSION = 2
#: Keys renamed between schema versions: old dotted name -> new dotted name.
RENAMED_KEYS: dict[int, dict[str, str]] = {
    1: {
        "cache.ttl": "cache.ttl_seconds",
        "cache.directory": "cache.dir",
        "retry.max_retries": "retry.max_attempts",
        "breaker.failure_threshold": "breaker.fail_max",
        "breaker.recovery_timeout": "breaker.reset_timeout",
        "security.vault_file": "security.vault_path",
    }
}
LAYERS = ("default", "user", "project", "env", "runtime")


@dataclass
class _Layer:
    name: str
    location: str | None
    values: dict[str, Any]
    text: str | None = None  # file text, for line numbers in messages
    env_names: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def where(self, dotted: str) -> str:
        if self.name == "env":
            return f"environment variable {self.env_names.get(dotted, dotted)}"
        if self.text is not None and self.location:
            line = find_key_line(self.text, dotted)
            return f"{self.location} line {line}" if line else self.location
        return f"{self.name} override"


def _in_trusted_dir(path: Path, trusted_dirs: list[str]) -> bool:
    from .discovery import _is_trusted_dir

    return _is_trusted_dir(Path(os.path.realpath(path.parent)), trusted_dirs)


class ConfigManager:
    """Loads, merges, validates, watches and saves the sci_ext configuration.

    ``user_path``, ``project_path``, ``cwd`` and ``environ`` default to the real
    ones; tests and tools pass their own.  With ``load=False`` only defaults apply.
    If the files or environment are invalid when the manager is created, it starts
    from the defaults and keeps the error in :attr:`last_error` (shown by
    ``%sci_config --validate``); it never raises on construction.
    """

    def __init__(
        self,
        *,
        user_path: Path | str | None = None,
        project_path: Path | str | None = None,
        cwd: Path | str | None = None,
        environ: Mapping[str, str] | None = None,
        load: bool = True,
    ) -> None:
        self._user_path = Path(user_path) if user_path else None
        self._project_path = Path(project_path) if project_path else None
        self._cwd = Path(cwd) if cwd else None
        self._environ = environ
        self._runtime: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._subscribers: list[Subscriber] = []
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._stamps: dict[str, tuple[float, int] | None] = {}
        self.last_error: str | None = None
        #: One line per setting a project file asked for but was not applied (see discovery.py).
        self.notices: list[str] = []
        # core.trusted_dirs as read from the user file and the environment (never a project file).
        self._trusted_dirs: list[str] = []
        # The layers below runtime as last read successfully; runtime changes build on
        # these, so a `set` neither re-reads files nor picks up an unvalidated edit.
        self._base: list[_Layer] = [self._default_layer()]
        self._config = self._build(self._base)
        if load:
            try:
                base = self._read_base_layers()
                self._config = self._build([*base, self._runtime_layer()])
                self._base = base
            except ConfigError as exc:
                self.last_error = str(exc)
                log.warning("sci_ext config invalid, using defaults: %s", exc)
            self._stamps = self._file_stamps()

    # ------------------------------------------------------------------ paths
    @property
    def user_path(self) -> Path:
        """The user config file (it need not exist)."""
        return self._user_path or user_config_path()

    @property
    def project_path(self) -> Path | None:
        """The project file in use, if one was given or found."""
        if self._project_path:
            return self._project_path
        return find_project_file(self._cwd, self._trusted_dirs)

    def _save_path(self, target: str) -> Path:
        if target == "user":
            return self.user_path
        if target == "project":
            return self.project_path or (self._cwd or Path.cwd()) / PROJECT_FILE
        raise ConfigError(f"--save: expected 'user' or 'project', got {target!r}")

    # ----------------------------------------------------------------- layers
    def _default_layer(self) -> _Layer:
        values: dict[str, Any] = {}
        for name, cls in registered_sections().items():
            values.update({f"{name}.{k}": v for k, v in flatten_instance(cls()).items()})
        return _Layer("default", None, values)

    def _file_layer(self, layer: str, path: Path | None, text: str | None = None) -> _Layer | None:
        """The layer of config file ``path``; ``text`` checks content not yet written there."""
        if text is not None and path is not None:
            table = parse_toml(text, path)
        elif path is None or not path.exists():
            return None
        else:
            if layer == "user":
                self._check_user_file(path)
            # The user file and a discovered project file (outside core.trusted_dirs) are read
            # through the trust check itself, on every (re)load (issue 18: watcher, discovery race).
            checked = layer == "user" or (
                layer == "project" and self._project_path is None and not _in_trusted_dir(path, self._trusted_dirs)
            )
            table, text = read_toml(path, trusted_only=checked, what=f"{layer} config file")
        version = table.pop("schema_version", SCHEMA_VERSION)
        problems = []
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            problems.append(
                f"{path}: schema_version {version!r} is newer than this sci_ext "
                f"understands ({SCHEMA_VERSION}); upgrade sci_ext"
            )
        elif version < SCHEMA_VERSION:
            problems.append(
                f"{path}: schema_version {version} is outdated (current {SCHEMA_VERSION}); "
                f"run `jupyter sci config migrate {path}`"
            )
        for key, value in table.items():
            if not isinstance(value, dict):
                problems.append(
                    f"{path} line {find_key_line(text, key) or '?'}: top-level key {key!r} must be inside a [section]"
                )
        values = flatten_table({k: v for k, v in table.items() if isinstance(v, dict)})
        if layer == "project":
            values = self._without_protected(path, values)
        return _Layer(layer, str(path), values, text=text, problems=problems)

    @staticmethod
    def _check_user_file(path: Path) -> None:
        """Refuse a user file (or its directory) another user could have written (V5)."""
        from ..trust import UntrustedPathError, check_trusted

        try:
            check_trusted(path.parent, what="config directory")
            check_trusted(path, what="config file")
        except UntrustedPathError as exc:
            raise ConfigError(str(exc), path=str(path)) from None

    def _without_protected(self, path: Path, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` of a project file minus the settings it may not change, each noted once."""
        from .discovery import protected_notice, warn_once

        kept = {}
        for dotted, value in values.items():
            notice = protected_notice(path, dotted, value, self.user_path)
            if notice is None:
                kept[dotted] = value
            else:
                if notice not in self.notices:
                    self.notices.append(notice)
                warn_once(notice)
        return kept

    def _trusted_dirs_from(self, layers: list[_Layer]) -> list[str]:
        """``core.trusted_dirs`` from the user file and environment layers only."""
        found: list[str] = []
        for layer in layers:
            raw = layer.values.get("core.trusted_dirs")
            if raw is None or layer.name not in ("user", "env"):
                continue
            found = [str(v) for v in raw] if isinstance(raw, list) else [p for p in str(raw).split(",") if p.strip()]
        return found

    def _env_layer(self) -> _Layer:
        environ = os.environ if self._environ is None else self._environ
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        for var, raw in environ.items():
            if not is_setting_variable(var):
                continue  # SCI_EXT_VAULT_PASSPHRASE and the like are not config keys
            parts = [p.lower() for p in var[len(ENV_PREFIX) :].split("__")]
            dotted = ".".join(parts)
            values[dotted] = raw
            names[dotted] = var
        return _Layer("env", None, values, env_names=names)

    def _read_base_layers(self) -> list[_Layer]:
        """Defaults, files and environment, read now (may raise for unreadable files)."""
        self.notices = []
        layers = [self._default_layer()]
        user_layer = self._file_layer("user", self.user_path)
        env_layer = self._env_layer()
        if user_layer is not None:
            layers.append(user_layer)
        # The project file is found with the trusted directories of the user file and environment.
        self._trusted_dirs = self._trusted_dirs_from([layer for layer in (user_layer, env_layer) if layer is not None])
        project_layer = self._file_layer("project", self.project_path)
        if project_layer is not None:
            layers.append(project_layer)
        layers.append(env_layer)
        return layers

    def _runtime_layer(self, runtime: dict[str, Any] | None = None) -> _Layer:
        return _Layer("runtime", None, dict(self._runtime if runtime is None else runtime))

    # --------------------------------------------------------------- building
    def _build(self, layers: list[_Layer]) -> Config:
        sections = registered_sections()
        specs: dict[str, FieldSpec] = {}
        for name, cls in sections.items():
            specs.update({f"{name}.{k}": v for k, v in leaf_fields(cls).items()})
        values: dict[str, Any] = {}
        sources: dict[str, Source] = {}
        extras: dict[str, dict[str, Any]] = {name: {} for name in sections}
        problems: list[str] = []
        for layer in layers:
            problems.extend(layer.problems)
            for dotted, raw in layer.values.items():
                section, _, key = dotted.partition(".")
                where = layer.where(dotted)
                if section not in sections:
                    problems.append(f"{where}: unknown section [{section}]{suggest(section, sections)}")
                    continue
                spec = specs.get(dotted)
                if spec is None:
                    if getattr(sections[section], "__sci_allow_extra__", False):
                        extras[section][key] = raw
                        values[dotted] = raw
                        sources[dotted] = Source(layer.name, layer.env_names.get(dotted, layer.location))
                        continue
                    file = layer.location if layer.text is not None else None
                    problems.append(f"{where}: {self._unknown_key(dotted, specs, file)}")
                    continue
                try:
                    values[dotted] = coerce(spec, raw)
                except ValueError as exc:
                    problems.append(f"{where}: {dotted}: {exc}")
                    continue
                sources[dotted] = Source(layer.name, layer.env_names.get(dotted, layer.location))
        built: dict[str, Any] = {}
        for name, cls in sections.items():
            prefix = name + "."
            section_values = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
            try:
                built[name] = build_section(cls, section_values, extras[name])
            except (TypeError, ValueError) as exc:
                origin = sorted({str(s) for k, s in sources.items() if k.startswith(prefix) and s.layer != "default"})
                problems.append(f"[{name}]: {exc}" + (f" (set in {', '.join(origin)})" if origin else ""))
        if problems:
            error = ConfigError(
                problems[0] if len(problems) == 1 else f"{problems[0]} (and {len(problems) - 1} more problem(s))"
            )
            error.problems = problems  # type: ignore[attr-defined]
            raise error
        return Config(built, values, sources, specs)

    @staticmethod
    def _unknown_key(dotted: str, specs: Mapping[str, FieldSpec], path: str | None = None) -> str:
        for renames in RENAMED_KEYS.values():
            if dotted in renames:
                hint = f"; run `jupyter sci config migrate {path}`" if path else ""
                return f"unknown key {dotted!r}: renamed to {renames[dotted]!r} in schema {SCHEMA_VERSION}{hint}"
        section = dotted.partition(".")[0]
        keys = [k for k in specs if k.startswith(section + ".")]
        if not keys:
            return f"unknown section {section!r}{suggest(section, {k.partition('.')[0] for k in specs})}"
        return f"unknown key {dotted!r}{suggest(dotted, keys)}"

    def unknown_key_message(self, dotted: str) -> str:
        """Why ``dotted`` is not a setting, with a suggestion when one is close."""
        return self._unknown_key(dotted, self._config._specs)

    # ------------------------------------------------------------- public API
    @property
    def config(self) -> Config:
        """The current merged configuration (never an invalid one)."""
        return self._config

    def get(self, dotted: str) -> Any:
        """The value of ``section.key`` (or a whole section by its name)."""
        return self._config[dotted]

    def source(self, dotted: str) -> Source:
        """The source of ``section.key``."""
        return self._config.source(dotted)

    @property
    def runtime_overrides(self) -> dict[str, Any]:
        """The runtime layer: values set with :meth:`set` and ``%sci_config``."""
        with self._lock:
            return {k: self._config[k] for k in self._runtime if k in self._config}

    def set(self, dotted: str | None = None, value: Any = None, /, **values: Any) -> Config:
        """Override settings at runtime: ``set("cache.ttl_seconds", 600)``.

        Several at once: ``set_many({...})``.  Strings are parsed like environment
        values.  Raises :class:`ConfigError` and changes nothing if any is invalid.
        """
        updates = dict(values)
        if dotted is not None:
            updates[dotted] = value
        return self.set_many(updates)

    def set_many(self, updates: Mapping[str, Any]) -> Config:
        """Apply several runtime overrides atomically (all or none)."""
        with self._lock:
            candidate = {**self._runtime, **updates}
            new = self._build([*self._base, self._runtime_layer(candidate)])
            self._runtime = candidate
            return self._apply(new)

    def reset(self, dotted: str | None = None) -> Config:
        """Drop the runtime override of ``dotted``, or all of them."""
        with self._lock:
            if dotted is None:
                candidate: dict[str, Any] = {}
            else:
                if dotted not in self._config:
                    raise ConfigError(f"--reset: {self.unknown_key_message(dotted)}", key=dotted)
                candidate = {k: v for k, v in self._runtime.items() if k != dotted}
            new = self._build([*self._base, self._runtime_layer(candidate)])
            self._runtime = candidate
            return self._apply(new)

    def reload(self, *, raise_errors: bool = True, origin: str = "reload") -> bool:
        """Re-read files and environment. Returns whether anything changed.

        An invalid result keeps the current config, notifies subscribers with a
        ``rejected`` event and (by default) raises :class:`ConfigError`.
        ``origin`` is passed to subscribers (the file watcher uses ``"watch"``).
        """
        with self._lock:
            self._stamps = self._file_stamps()
            try:
                base = self._read_base_layers()
                new = self._build([*base, self._runtime_layer()])
            except ConfigError as exc:
                self.last_error = str(exc)
                log.warning("config reload rejected, keeping the previous config: %s", exc)
                self._notify(ConfigEvent("rejected", self._config, error=str(exc), origin=origin))
                if raise_errors:
                    raise
                return False
            self.last_error = None
            self._base = base
            old = self._config
            self._apply(new, origin=origin)
            return new != old

    def validate(self) -> list[str]:
        """Problems of the files, environment and overrides as they are now (empty: valid)."""
        with self._lock:
            try:
                self._build([*self._read_base_layers(), self._runtime_layer()])
            except ConfigError as exc:
                return list(getattr(exc, "problems", [str(exc)]))
            return []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` on every applied change or rejected reload.

        Returns a function that unsubscribes.  Exceptions raised by a subscriber are
        logged and do not stop the others.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def save(self, target: str = "user") -> Path:
        """Write the runtime overrides into the ``user`` or ``project`` file.

        The existing file keeps its comments and layout (tomlkit); the write is
        atomic.  The saved keys then come from that file instead of the runtime
        layer.  Raises :class:`ConfigError` if the result would not validate.
        """
        with self._lock:
            path = self._save_path(target)
            if not self._runtime:
                raise ConfigError("nothing to save: no runtime overrides (set some with KEY=VALUE first)")
            old_text = path.read_text(encoding="utf-8") if path.exists() else ""
            values = {k: self._config[k] for k in self._runtime}
            new_text = update_toml_text(old_text, {"schema_version": SCHEMA_VERSION, **values})
            self._check_file_text(target, path, new_text)
            atomic_write_text(path, new_text, mode=0o644 if target == "project" else 0o600)
            self._runtime = {}
            self.reload()
            return path

    def _check_file_text(self, target: str, path: Path, text: str) -> None:
        """Raise :class:`ConfigError` unless the config would be valid with ``text`` in ``path``."""
        candidate = self._file_layer(target, path, text)
        layers = [layer for layer in self._base if layer.name != target]
        if candidate is not None:  # always, since text is given
            layers.append(candidate)
        self._build(sorted(layers, key=lambda layer: LAYERS.index(layer.name)))

    # --------------------------------------------------------------- watching
    def _file_stamps(self) -> dict[str, tuple[float, int] | None]:
        stamps: dict[str, tuple[float, int] | None] = {}
        for path in (self.user_path, self.project_path):
            if path is None:
                continue
            try:
                st = path.stat()
                stamps[str(path)] = (st.st_mtime, st.st_size)
            except OSError:
                stamps[str(path)] = None
        return stamps

    def check_files(self) -> bool:
        """Reload if a config file changed since the last look; returns whether it did."""
        if self._file_stamps() == self._stamps:
            return False
        self.reload(raise_errors=False, origin="watch")
        return True

    def start_watching(self, interval: float | None = None) -> None:
        """Poll the config files in a daemon thread and hot-reload on change.

        Polling (mtime and size) is used rather than inotify: it works on every
        platform and network file system, and costs one ``stat`` per file per tick.
        """
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval or self._config.core.reload_interval_seconds):
                try:
                    self.check_files()
                except Exception:  # pragma: no cover - never let the watcher die
                    log.exception("config watcher failed")

        self._watcher = threading.Thread(target=loop, name="sci_ext-config-watch", daemon=True)
        self._watcher.start()

    def stop_watching(self) -> None:
        """Stop the watcher thread started by :meth:`start_watching`."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self._watcher = None

    # --------------------------------------------------------------- internal
    def _apply(self, new: Config, origin: str = "runtime") -> Config:
        old = self._config
        self._config = new
        changed = tuple(
            k for k in sorted(set(old._values) | set(new._values)) if old._values.get(k) != new._values.get(k)
        )
        if changed:
            self._notify(ConfigEvent("changed", new, changed, origin=origin))
        return new

    def _notify(self, event: ConfigEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("config subscriber %r failed", callback)
