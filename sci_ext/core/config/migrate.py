"""Migration of legacy configuration into sci_ext's TOML files.

Built in: AI-Scientist-v2's ``bfts_config.yaml`` (into a ``[bfts]`` section of the
project file) and older sci_ext schema versions (in place).  Other formats plug in
with :func:`register_migrator`: importing ``sci_ext.core.security`` adds ``.env`` files
(this module never imports a feature).

Every migration computes the new text first, validates it, and only then writes:
a backup of the file it changes, then an atomic replace.  Running a migration a
second time finds nothing to change.  Nothing here runs on import.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .bfts import BftsConfig
from .bfts_yaml import INT64_MAX, INT64_MIN, MISSING, Refused, encode, leaves, load_yaml
from .files import atomic_write_text, flatten_table, join_dotted, read_toml, update_toml_text
from .manager import PROJECT_FILE, RENAMED_KEYS, SCHEMA_VERSION, find_project_file
from .schema import FieldSpec, coerce, flatten_instance, leaf_fields, type_name

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
    """Dotted key (quoted where needed) -> 1-based line in a YAML mapping document (for messages)."""
    import yaml

    lines: dict[str, int] = {}

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                path = (*prefix, str(key_node.value))
                lines[join_dotted(path)] = key_node.start_mark.line + 1
                walk(value_node, path)

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    except yaml.YAMLError:
        pass
    return lines


def _read_bfts(source: Path) -> tuple[str, dict[str, Any]]:
    """The text and data of a bfts YAML file, read as AI-Scientist-v2 reads it."""
    import yaml

    try:
        text = source.read_bytes().decode("utf-8-sig")  # a BOM from a Windows editor is not a key
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason})", path=str(source)) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source} line {mark.line + 1}" if mark is not None else str(source)
        problem = str(getattr(exc, "problem", exc))
        tag = re.search(r"constructor for the tag '([^']+)'", problem)
        if tag is not None:  # valid YAML, with a tag neither OmegaConf.load nor sci_ext reads
            shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(
                f"{where}: the tag {shown} is not one OmegaConf.load reads (it reads plain values, "
                "and pathlib paths as OmegaConf.save writes them); not migrated",
                path=str(source),
            ) from None
        raise ConfigError(f"{where}: invalid YAML: {problem}", path=str(source)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level", path=str(source))
    return text, data


def _kind(value: Any) -> str:
    return "a table" if isinstance(value, dict) else "null" if value is None else f"a {type(value).__name__}"


def _typed_value(dotted: str, value: Any, spec: FieldSpec, default: Any) -> Any:
    """What to write for typed key ``dotted`` (``None``: nothing); ``ValueError`` says why not."""
    kind = type_name(spec.type)
    if value is None:
        if not kind.endswith("or none"):
            raise ValueError(f"null is not allowed: sci_ext types this key as {kind}")
        return None if default is None else "null"  # absent would load the non-null default
    if isinstance(value, dict):
        raise ValueError(f"expected {kind}, got a table")
    if isinstance(value, str) and "${" in value and not kind.startswith("string"):
        raise ValueError(
            f"{value!r} is an OmegaConf interpolation, and sci_ext types this key as {kind} without "
            f"resolving interpolations: write the value (or set it per run with "
            f"SCI_EXT_BFTS__{dotted.upper().replace('.', '__')})"
        )
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{value} does not fit in TOML's 64-bit integers")
    coerced = coerce(spec, value)
    if not _equal(value, coerced, numeric=kind.startswith("number")):
        raise ValueError(f"{_kind(value)} {value!r} would load back as {coerced!r}: write it as {kind}")
    return coerced


def _extra_value(path: tuple[str, ...], value: Any, specs: dict[str, FieldSpec]) -> Any:
    """What to write for a key sci_ext does not type; ``ValueError`` when it clashes with a typed one."""
    dotted = join_dotted(path)
    inside = sorted(name for name in specs if name.startswith(dotted + "."))
    if inside:
        raise ValueError(f"is a table of settings ({', '.join(inside[:3])}, ...), got {_kind(value)}")
    for end in range(1, len(path)):
        outer = join_dotted(path[:end])
        if outer in specs:
            raise ValueError(f"{outer} is {type_name(specs[outer].type)}, so it cannot hold {path[end]!r}")
    return encode(value, dotted)


def _load_bfts(source: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], Any], dict[str, int]]:
    """``(values to write by dotted key, YAML leaves by path, YAML lines)``; refuses with one line per problem."""
    text, data = _read_bfts(source)
    lines = _yaml_lines(text)

    def where(dotted: str) -> str:
        line = lines.get(dotted)
        return f"{source} line {line}" if line else str(source)

    try:
        yaml_leaves = leaves(data)
    except Refused as exc:
        raise ConfigError(f"{where(exc.path)}: {exc}", path=str(source)) from None
    specs = leaf_fields(BftsConfig)
    defaults = flatten_instance(dataclasses.replace(BftsConfig(), extra={}))
    problems = []
    values: dict[str, Any] = {}
    for path, value in yaml_leaves.items():
        dotted = join_dotted(path)
        spec = specs.get(dotted)
        try:
            if spec is not None and value == MISSING:
                values[dotted] = None  # OmegaConf's "must be set": sci_ext's default applies (a note says so)
            elif spec is not None:
                values[dotted] = _typed_value(dotted, value, spec, defaults.get(dotted))
            else:
                values[dotted] = _extra_value(path, value, specs)
        except ValueError as exc:
            problems.append(f"{where(dotted)}: {dotted}: {exc.args[0] if isinstance(exc, Refused) else exc}")
    _raise_problems(source, problems)
    return values, yaml_leaves, lines


def _raise_problems(source: Path, problems: list[str]) -> None:
    if problems:
        error = ConfigError(
            problems[0] if len(problems) == 1 else f"{problems[0]} (and {len(problems) - 1} more)", path=str(source)
        )
        error.problems = problems  # type: ignore[attr-defined]
        raise error


def _equal(a: Any, b: Any, numeric: bool = False) -> bool:
    """Equal values of the same type (an int equals a float only for a typed number)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if numeric and isinstance(a, int | float) and isinstance(b, int | float):
        return not isinstance(a, bool) and not isinstance(b, bool) and a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _verify_bfts(
    source: Path, target: Path, new: str, yaml_leaves: dict[tuple[str, ...], Any], lines: dict[str, int]
) -> None:
    """Load the ``[bfts]`` part of ``new`` as sci_ext will, and check every YAML leaf comes back equal."""
    import tomlkit

    from .manager import ConfigManager

    bfts_only = tomlkit.dumps({"schema_version": SCHEMA_VERSION, "bfts": tomlkit.parse(new)["bfts"].unwrap()})
    manager = ConfigManager(load=False, environ={})
    layer = manager._file_layer("project", target, text=bfts_only)
    back = manager._build([manager._default_layer(), *([layer] if layer else [])]).bfts
    specs = leaf_fields(BftsConfig)
    problems = []
    for path, value in yaml_leaves.items():
        dotted = join_dotted(path)
        if dotted in specs and value == MISSING:
            continue  # not written: a note says so
        if dotted in specs:
            got: Any = back
            for part in path:
                got = getattr(got, part)
            same = _equal(value, got, numeric=type_name(specs[dotted].type).startswith("number"))
        else:
            got = back.extra.get(dotted, "<missing>")
            same = _equal(value, got)
        if not same:
            line = lines.get(dotted)
            where = f"{source} line {line}" if line else str(source)
            problems.append(f"{where}: {dotted}: {value!r} would load back as {got!r}; not migrated")
    _raise_problems(source, problems)


def _migrate_bfts(source: Path, target: Path | None, dry_run: bool) -> MigrationResult:
    values, yaml_leaves, lines = _load_bfts(source)
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
    new = update_toml_text(new, {f"bfts.{k}": v for k, v in values.items() if v is not None})
    _verify_bfts(source, target, new, yaml_leaves, lines)
    if old is not None and _same_bfts(old, new):
        new = old  # same content, keep the file byte for byte
    changed, diff, backup = write_with_backup(target, old, new, dry_run)
    written = sum(value is not None for value in values.values())
    notes = [f"{written} settings under [bfts]"]  # each checked to load back equal (_verify_bfts)
    specs = leaf_fields(BftsConfig)

    def at(dotted: str) -> str:
        line = lines.get(dotted)
        return f" (line {line})" if line else ""

    for path, value in yaml_leaves.items():
        dotted = join_dotted(path)
        if value == MISSING:
            kept = "kept as the text '???'" if dotted not in specs else "not written: sci_ext's default applies"
            notes.append(f"bfts.{dotted}{at(dotted)}: ??? is OmegaConf's missing value (set it before a run reads it); "
                         f"{kept}")  # fmt: skip
    interpolated = [join_dotted(p) for p, v in yaml_leaves.items() if isinstance(v, str) and "${" in v]
    if interpolated:
        notes.append(
            f"{len(interpolated)} OmegaConf interpolation(s) kept as text, not resolved: "
            + ", ".join(f"bfts.{d}{at(d)}" for d in interpolated)
        )
    return MigrationResult(source, target, changed, diff, dry_run, backup, notes)


def _same_bfts(old: str, new: str) -> bool:
    import tomlkit

    try:
        return bool(tomlkit.parse(old).unwrap() == tomlkit.parse(new).unwrap())
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
