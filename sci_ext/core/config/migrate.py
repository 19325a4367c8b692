"""Migration of legacy configuration into sci_ext's TOML files.

Built in: AI-Scientist-v2's ``bfts_config.yaml`` (into a ``[bfts]`` section of the
project file) and older sci_ext schema versions (in place).  Other formats plug in
with :func:`register_migrator` (the security feature adds ``.env`` files).

Every migration computes the new text first, validates it, and only then writes:
a backup of the file it changes, then an atomic replace.  Running a migration a
second time finds nothing to change.  Nothing here runs on import.
"""

from __future__ import annotations

import difflib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .bfts import BftsConfig
from .files import atomic_write_text, flatten_table, read_toml, update_toml_text
from .manager import PROJECT_FILE, RENAMED_KEYS, SCHEMA_VERSION, find_project_file
from .schema import coerce, leaf_fields

__all__ = ["MigrationResult", "default_target", "migrate", "register_migrator", "write_with_backup"]


@dataclass
class MigrationResult:
    """What a migration did (or, with ``dry_run``, would do)."""

    source: Path
    target: Path
    changed: bool
    diff: str
    dry_run: bool
    backup: Path | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One human line (plus notes) describing the outcome."""
        if not self.changed:
            head = f"{self.source}: nothing to migrate, {self.target} is up to date"
        elif self.dry_run:
            head = f"{self.source}: would update {self.target} (dry run, nothing written)"
        else:
            head = f"{self.source}: migrated into {self.target}"
            if self.backup is not None:
                head += f" (backup: {self.backup})"
        return "\n".join([head, *self.notes])


Migrator = Callable[[Path, Path | None, bool], MigrationResult]
_MIGRATORS: list[tuple[str, Callable[[Path], bool], Migrator]] = []


def register_migrator(name: str, matches: Callable[[Path], bool], run: Migrator) -> None:
    """Add a migrator for files where ``matches(path)`` is true (checked before built-ins)."""
    _MIGRATORS.insert(0, (name, matches, run))


def default_target(cwd: Path | None = None) -> Path:
    """The project file a migration writes into: the nearest ``sci_ext.toml`` or a new one."""
    return find_project_file(cwd) or (cwd or Path.cwd()) / PROJECT_FILE


def migrate(path: Path | str, *, target: Path | str | None = None, dry_run: bool = False) -> MigrationResult:
    """Migrate the legacy file at ``path``; see the module docstring."""
    source = Path(path).expanduser()
    if not source.exists():
        raise ConfigError(f"{source}: no such file", path=str(source))
    if source.is_dir():
        raise ConfigError(f"{source}: is a directory, expected a file to migrate", path=str(source))
    from ..security import dotenv  # registers the `.env` migrator (the security feature)

    dotenv.register()
    for _name, matches, run in _MIGRATORS:
        if matches(source):
            return run(source, Path(target) if target else None, dry_run)
    known = ", ".join(name for name, _, _ in _MIGRATORS)
    raise ConfigError(f"{source}: don't know how to migrate this file (known: {known})", path=str(source))


def write_with_backup(
    target: Path, old: str | None, new: str, dry_run: bool, mode: int = 0o600
) -> tuple[bool, str, Path | None]:
    """Write ``new`` into ``target`` after backing up ``old``; return (changed, diff, backup)."""
    before = old if old is not None else ""
    if before == new:
        return False, "", None
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{target} (current)" if old is not None else "/dev/null",
            tofile=f"{target} (migrated)",
        )
    )
    if dry_run:
        return True, diff, None
    backup = None
    if old is not None:
        backup = target.with_name(f"{target.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while backup.exists():
            backup = target.with_name(f"{target.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
            n += 1
        from ..trust import create_private_file

        fd = create_private_file(backup)  # 0600, O_EXCL: the old file may hold a signing key
        with os.fdopen(fd, "wb") as handle:
            handle.write(target.read_bytes())
        shutil.copystat(target, backup)
        os.chmod(backup, 0o600)
    atomic_write_text(target, new, mode=(target.stat().st_mode & 0o777) if target.exists() else mode)
    return True, diff, backup


# ------------------------------------------------------------------ bfts YAML
def _yaml_lines(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line in a YAML mapping document (for messages)."""
    import yaml

    lines: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                dotted = f"{prefix}{key_node.value}"
                lines[dotted] = key_node.start_mark.line + 1
                walk(value_node, dotted + ".")

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), "")
    except yaml.YAMLError:
        pass
    return lines


def _load_bfts(source: Path) -> dict[str, Any]:
    import yaml

    text = source.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source} line {mark.line + 1}" if mark is not None else str(source)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}", path=str(source)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level", path=str(source))
    flat = {k: v for k, v in flatten_table(data).items() if v is not None}
    specs = leaf_fields(BftsConfig)
    lines = _yaml_lines(text)
    problems = []
    typed: dict[str, Any] = {}
    for dotted, value in flat.items():
        spec = specs.get(dotted)
        if spec is None:
            typed[dotted] = value if not isinstance(value, tuple) else list(value)
            continue
        try:
            typed[dotted] = coerce(spec, value)
        except ValueError as exc:
            line = lines.get(dotted)
            where = f"{source} line {line}" if line else str(source)
            problems.append(f"{where}: {dotted}: {exc}")
    if problems:
        error = ConfigError(
            problems[0] if len(problems) == 1 else f"{problems[0]} (and {len(problems) - 1} more)", path=str(source)
        )
        error.problems = problems  # type: ignore[attr-defined]
        raise error
    return typed


def _migrate_bfts(source: Path, target: Path | None, dry_run: bool) -> MigrationResult:
    values = _load_bfts(source)
    target = target or default_target()
    old = target.read_text(encoding="utf-8") if target.exists() else None
    if old is not None:
        read_toml(target)  # refuse to rewrite a file that is already broken
    existing = old or ""
    import tomlkit

    doc = tomlkit.parse(existing) if existing.strip() else tomlkit.document()
    if "bfts" in doc:
        del doc["bfts"]
    new = update_toml_text(tomlkit.dumps(doc), {"schema_version": SCHEMA_VERSION})
    new = update_toml_text(new, {f"bfts.{k}": v for k, v in values.items()})
    if old is not None and _same_bfts(old, new):
        new = old  # same content, keep the file byte for byte
    changed, diff, backup = write_with_backup(target, old, new, dry_run)
    notes = [f"{len(values)} settings under [bfts]"]
    return MigrationResult(source, target, changed, diff, dry_run, backup, notes)


def _same_bfts(old: str, new: str) -> bool:
    import tomlkit

    try:
        return tomlkit.parse(old).unwrap() == tomlkit.parse(new).unwrap()
    except Exception:
        return False


# ------------------------------------------------------- sci_ext schema upgrade
def _migrate_schema(source: Path, target: Path | None, dry_run: bool) -> MigrationResult:
    table, old = read_toml(source)
    version = table.get("schema_version")
    flat = flatten_table({k: v for k, v in table.items() if isinstance(v, dict)})
    if version is None:
        version = 1 if any(k in RENAMED_KEYS[1] for k in flat) else SCHEMA_VERSION
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ConfigError(
            f"{source}: schema_version {version!r} is newer than this sci_ext ({SCHEMA_VERSION})", path=str(source)
        )
    updates: dict[str, Any] = {}
    removals: list[str] = []
    notes = []
    for step in range(version, SCHEMA_VERSION):
        for old_key, new_key in RENAMED_KEYS.get(step, {}).items():
            if old_key in flat:
                removals.append(old_key)
                if new_key not in flat:
                    updates[new_key] = flat[old_key]
                notes.append(f"renamed {old_key} -> {new_key}")
    new = update_toml_text(old, {"schema_version": SCHEMA_VERSION, **updates}, remove=tuple(removals))
    if version == SCHEMA_VERSION and not updates and not removals and table.get("schema_version") == SCHEMA_VERSION:
        new = old
    out = target or source
    changed, diff, backup = write_with_backup(
        out, old if out == source else (out.read_text() if out.exists() else None), new, dry_run
    )
    return MigrationResult(source, out, changed, diff, dry_run, backup, notes)


register_migrator("sci_ext TOML (schema upgrade)", lambda p: p.suffix == ".toml", _migrate_schema)
register_migrator("AI-Scientist-v2 bfts_config.yaml", lambda p: p.suffix in (".yaml", ".yml"), _migrate_bfts)
