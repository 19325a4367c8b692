"""Migration of ``.env`` files: credentials into the vault, settings into config.

``jupyter sci config migrate .env`` (and ``%sci_config --migrate .env``):

* keys that look like credentials are stored in the vault: a name containing
  PASSWORD, PASSWD, PASSPHRASE, SECRET, TOKEN, KEY, CREDENTIAL, PRIVATE or AUTH (and
  the AI-Scientist-v2 names), or a value that is a URL with a password
  (``postgres://app:pw@db/app``);
* credentials sci_ext itself reads from the environment stay in ``.env`` and are
  listed as left there: ``SCI_EXT_VAULT_PASSPHRASE`` (the vault's own key cannot
  live in the vault) and ``SCI_EXT_<SECTION>__<KEY>`` settings that are
  ``secret=True`` (``cache.redis_signing_key``) or a URL with a password;
* other ``SCI_EXT_<SECTION>__<KEY>`` settings go into the project file
  ``sci_ext.toml`` (typed and checked like any config value);
* every other key is copied into the ``[dotenv]`` section of the same file (read
  back as ``get_config().dotenv.extra``) and also stays in the ``.env`` file, because
  other tools read it there and it holds nothing secret.

No credential is ever written into a config file, and diffs show ``KEY=********``.

Order of writes: vault first (fsynced and read back), then an *encrypted* backup of
the original file (sealed with the vault key: a plaintext backup of secrets would
defeat the purpose), then the config file, and only then the ``.env`` file is
replaced, atomically, with the moved lines turned into comments.  A second run
finds nothing to move.  Diffs and notes never show a credential's value.
"""

from __future__ import annotations

import difflib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..config.files import atomic_write_text, update_toml_text
from ..config.migrate import MigrationResult, default_target, register_migrator, write_with_backup
from ..errors import ConfigError

__all__ = ["DotenvEntry", "is_credential", "migrate_dotenv", "parse_dotenv", "register", "restore_dotenv_backup"]

#: Credentials AI-Scientist-v2 reads from the environment (always vaulted).
KNOWN_CREDENTIALS = frozenset(
    {
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "DEEPSEEK_API_KEY",
        "OPENROUTER_API_KEY",
        "HUGGINGFACE_API_KEY",
        "S2_API_KEY",
        "HF_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AZURE_OPENAI_API_KEY",
        "GITHUB_TOKEN",
        "WANDB_API_KEY",
    }
)
_CREDENTIAL_RE = re.compile(r"(PASSW(OR)?D|PASSPHRASE|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|_PAT$|^PAT$|_PWD$)")
#: Credentials sci_ext reads from the environment itself: never moved, never copied.
_LEFT_IN_ENV = frozenset({"SCI_EXT_VAULT_PASSPHRASE"})
_LINE_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$")
_SETTING_PREFIX = "SCI_EXT_"


@dataclass(frozen=True)
class DotenvEntry:
    """One ``KEY=VALUE`` line of a ``.env`` file."""

    key: str
    value: str
    line: int


def _unquote(raw: str, where: str) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        while quote == '"' and end > 0 and raw[end - 1] == "\\":
            end = raw.find(quote, end + 1)
        if end < 0:
            raise ConfigError(f"{where}: unterminated {quote} quote")
        body = raw[1:end]
        if quote == '"':
            body = body.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        return body
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def parse_dotenv(path: Path) -> tuple[list[DotenvEntry], list[str]]:
    """Entries and the raw lines of ``path``; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", path=str(path)) from None
    lines = text.splitlines()
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE_RE.match(line)
        if not match:
            raise ConfigError(f"{path} line {number}: expected KEY=VALUE", path=str(path), line=number)
        entries.append(DotenvEntry(match.group(1), _unquote(match.group(2), f"{path} line {number}"), number))
    return entries, lines


def has_url_password(value: str) -> bool:
    """True when ``value`` is a URL carrying a password (``scheme://user:pw@host``)."""
    from urllib.parse import urlsplit

    if "://" not in value or "@" not in value:
        return False
    try:
        return bool(urlsplit(value.strip()).password)
    except ValueError:
        return True  # unparseable but shaped like one: treat as a credential


def _secret_setting(dotted: str) -> bool:
    from ..config.manager import registered_sections
    from ..config.schema import leaf_fields

    section, _, key = dotted.partition(".")
    cls = registered_sections().get(section)
    spec = leaf_fields(cls).get(key) if cls is not None else None
    return bool(spec is not None and spec.secret)


def is_credential(key: str, value: str | None = None) -> bool:
    """True when ``key`` (with ``value``, if given) holds a credential: it never goes into a config file.

    ``SCI_EXT_<SECTION>__<KEY>`` settings are credentials when the setting is
    ``secret=True`` or the value is a URL with a password; any other name when it
    contains PASSWORD, PASSPHRASE, SECRET, TOKEN, KEY, CREDENTIAL, PRIVATE or AUTH,
    is a known AI-Scientist credential, or its value is a URL with a password.
    """
    upper = key.upper()
    if value is not None and has_url_password(value):
        return True
    dotted = _setting_key(upper)
    if dotted is not None:
        return _secret_setting(dotted.lower())
    return upper in KNOWN_CREDENTIALS or upper in _LEFT_IN_ENV or bool(_CREDENTIAL_RE.search(upper))


def _left_in_env(entry: DotenvEntry) -> bool:
    """Credentials sci_ext reads from the environment: they stay in ``.env`` (listed as left)."""
    return entry.key.upper() in _LEFT_IN_ENV or (
        _setting_key(entry.key) is not None and is_credential(entry.key, entry.value)
    )


def _setting_key(key: str) -> str | None:
    if not key.startswith(_SETTING_PREFIX) or "__" not in key[len(_SETTING_PREFIX) :]:
        return None
    return ".".join(part.lower() for part in key[len(_SETTING_PREFIX) :].split("__"))


def _scrub(text: str, values: list[str]) -> str:
    """``text`` with every credential value (longest first) replaced by ``********``."""
    for value in sorted({v for v in values if len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, "********")
    return text


def _masked(lines: list[str], secret_lines: set[int]) -> list[str]:
    out = []
    for number, line in enumerate(lines, start=1):
        shown = line.split("=", 1)[0] + "=********" if number in secret_lines else line
        out.append(shown + "\n")
    return out


def _check_setting(dotted: str, value: str, where: str) -> object:
    from ..config.manager import registered_sections
    from ..config.schema import coerce, leaf_fields

    section, _, key = dotted.partition(".")
    sections = registered_sections()
    if section not in sections:
        raise ConfigError(f"{where}: unknown config section {section!r} in {dotted!r}")
    spec = leaf_fields(sections[section]).get(key)
    if spec is None:
        raise ConfigError(f"{where}: unknown config key {dotted!r}")
    try:
        return coerce(spec, value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {dotted}: {exc}") from None


def migrate_dotenv(source: Path, target: Path | None, dry_run: bool) -> MigrationResult:
    """Move credentials of ``source`` into the vault and settings into ``target``."""
    entries, lines = parse_dotenv(source)
    secret_entries = [e for e in entries if is_credential(e.key, e.value)]
    left = [e for e in secret_entries if _left_in_env(e)]
    credentials = [e for e in secret_entries if not _left_in_env(e)]
    secret_keys = {e.key for e in secret_entries}
    settings = {}
    for entry in entries:
        dotted = _setting_key(entry.key)
        if dotted is not None:
            checked = _check_setting(dotted, entry.value, f"{source} line {entry.line}")
            if entry.key not in secret_keys:
                settings[dotted] = (checked, entry)
    others = {e.key: e.value for e in entries if e.key not in secret_keys and _setting_key(e.key) is None}
    secret_values = [e.value for e in secret_entries]
    target = target or default_target(source.parent)
    old_toml = target.read_text(encoding="utf-8") if target.exists() else None
    from ..config.manager import SCHEMA_VERSION

    toml = update_toml_text(
        old_toml or "",
        {
            "schema_version": SCHEMA_VERSION,
            **{d: v for d, (v, _) in settings.items()},
            **{f"dotenv.{k}": v for k, v in others.items()},
        },
    )
    toml_changes = toml != (old_toml or "") and bool(settings or others)
    moved = {e.line: f"# {e.key}: moved to the sci_ext vault" for e in credentials}
    moved.update({e.line: f"# {e.key}: moved to {target.name} ({d})" for d, (_, e) in settings.items()})
    new_lines = [moved.get(n, line) for n, line in enumerate(lines, start=1)]
    new_text = "\n".join(new_lines) + ("\n" if lines else "")
    old_text = source.read_text(encoding="utf-8")
    notes = []
    if credentials:
        notes.append(f"{len(credentials)} credential(s) into the vault: {', '.join(e.key for e in credentials)}")
    if settings:
        notes.append(f"{len(settings)} setting(s) into {target}: {', '.join(settings)}")
    if others:
        notes.append(f"copied into [dotenv] of {target.name} (also kept in {source.name}): {', '.join(others)}")
    if left:
        notes.append(
            f"left in {source.name} (credentials sci_ext reads from the environment; never copied into a config "
            f"file): {', '.join(e.key for e in left)}"
        )
    changed = bool(credentials or settings or toml_changes)
    secret_lines = {e.line for e in secret_entries}
    diff = (
        "".join(
            difflib.unified_diff(
                _masked(lines, secret_lines),
                _masked(new_lines, {e.line for e in left}),
                fromfile=f"{source} (current, values hidden)",
                tofile=f"{source} (migrated)",
            )
        )
        if changed
        else ""
    )
    if toml_changes:
        diff += "".join(
            difflib.unified_diff(
                (old_toml or "").splitlines(keepends=True),
                toml.splitlines(keepends=True),
                fromfile=f"{target} (current)" if old_toml is not None else "/dev/null",
                tofile=f"{target} (migrated)",
            )
        )
    if any(value in toml for value in secret_values if len(value) >= 8):  # never, by construction
        raise ConfigError(f"{source}: refusing to write a credential into {target}; nothing was changed")
    diff = _scrub(diff, secret_values)
    if not changed or dry_run:
        return MigrationResult(source, target, changed, diff, dry_run, None, notes)

    backup: Path | None = None
    replaced: list[str] = []
    if new_text != old_text:  # the .env file changes: vault first, then a sealed backup
        from .manager import get_security_manager

        manager = get_security_manager()
        existing = set(manager.vault.names())
        replaced = [e.key for e in credentials if e.key in existing and manager.vault.get(e.key) != e.value]
        for entry in credentials:
            manager.set_secret(entry.key, entry.value)
        for entry in credentials:  # read back: the plaintext goes only once the vault holds every value
            if manager.vault.get(entry.key) != entry.value:
                raise ConfigError(f"{source}: the vault did not keep {entry.key}; {source} was left unchanged")
        backup = source.with_name(f"{source.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}.sealed")
        n = 1
        while backup.exists():
            backup = source.with_name(f"{source.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{n}.sealed")
            n += 1
        sealed = manager.vault.seal_blob(old_text.encode("utf-8"), f"dotenv:{source.name}")
        from ..trust import create_private_file

        fd = create_private_file(backup, what="sealed .env backup")
        with os.fdopen(fd, "wb") as handle:
            handle.write(sealed)
            handle.flush()
            os.fsync(handle.fileno())
    if toml_changes:
        write_with_backup(target, old_toml, toml, False)
    if new_text != old_text:
        atomic_write_text(source, new_text, mode=source.stat().st_mode & 0o777)
    from .manager import get_security_manager

    get_security_manager().audit(
        "dotenv.migrate", source=str(source), names=[e.key for e in credentials], settings=sorted(settings)
    )
    if replaced:
        notes.append(f"replaced the vault's previous value of: {', '.join(replaced)}")
    if backup is not None:
        notes.append(
            f"encrypted backup of the original: {backup} (restore: sci_ext.core.security.dotenv.restore_dotenv_backup)"
        )
    return MigrationResult(source, target, True, diff, False, backup, notes)


def restore_dotenv_backup(backup: Path | str) -> str:
    """The original text of a ``.env`` file from its sealed backup."""
    from .manager import get_security_manager

    return get_security_manager().vault.open_blob(Path(backup).read_bytes()).decode("utf-8")


def _matches(path: Path) -> bool:
    return (
        path.name == ".env"
        or (path.name.startswith(".env.") and not path.name.endswith(".sealed"))
        or path.suffix == ".env"
    )


_registered = False


def register() -> None:
    """Add the ``.env`` migrator to ``jupyter sci config migrate`` (idempotent)."""
    global _registered
    if not _registered:
        register_migrator(".env file (credentials into the vault)", _matches, migrate_dotenv)
        _registered = True


register()  # importing the security feature adds its migrator; config never imports security
