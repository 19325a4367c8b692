"""`.env` migration: credentials into the vault, settings into config, encrypted backup."""

from __future__ import annotations

from pathlib import Path

import pytest
from security_fixtures import cli, scan_for

from sci_ext.core.config.migrate import migrate
from sci_ext.core.errors import ConfigError
from sci_ext.core.security import get_security_manager
from sci_ext.core.security.dotenv import is_credential, parse_dotenv, register, restore_dotenv_backup

OPENAI = "sk-proj-dotenv-0123456789abcdef"
AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOTENV = f"""# AI-Scientist keys
OPENAI_API_KEY={OPENAI}
export AWS_SECRET_ACCESS_KEY="{AWS}"
HF_TOKEN='hf_dotenv_abcdefghijkl'
S2_API_KEY=s2-key-value-1234 # inline comment
SCI_EXT_CACHE__TTL_SECONDS=600
SCI_EXT_RETRY__MAX_ATTEMPTS=5
MODEL_NAME=gpt-4o
"""


@pytest.fixture
def dotenv(fast_vault) -> Path:
    register()
    path = fast_vault["project"] / ".env"
    path.write_text(DOTENV)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("OPENAI_API_KEY", True),
        ("AWS_ACCESS_KEY_ID", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("HF_TOKEN", True),
        ("DB_PASSWORD", True),
        ("MY_SECRET_THING", True),
        ("GITHUB_PAT", True),
        ("MODEL_NAME", False),
        ("DEBUG", False),
        ("SCI_EXT_CACHE__TTL_SECONDS", False),
        ("PATH", False),
    ],
)
def test_credential_names(name: str, expected: bool) -> None:
    assert is_credential(name) is expected


def test_parse(dotenv: Path) -> None:
    entries, _ = parse_dotenv(dotenv)
    values = {e.key: e.value for e in entries}
    assert values["AWS_SECRET_ACCESS_KEY"] == AWS and values["S2_API_KEY"] == "s2-key-value-1234"
    assert values["HF_TOKEN"] == "hf_dotenv_abcdefghijkl"
    bad = dotenv.with_name("bad.env")
    bad.write_text("GOOD=1\nthis is not a pair\n")
    with pytest.raises(ConfigError, match=r"bad.env line 2: expected KEY=VALUE"):
        parse_dotenv(bad)
    bad.write_text('A="unterminated\n')
    with pytest.raises(ConfigError, match="unterminated"):
        parse_dotenv(bad)


def test_dry_run_shows_no_values_and_writes_nothing(dotenv: Path) -> None:
    result = migrate(dotenv, dry_run=True)
    assert result.changed and result.dry_run
    text = result.summary() + result.diff
    for value in (OPENAI, AWS, "hf_dotenv_abcdefghijkl", "s2-key-value-1234"):
        assert value not in text
    assert "OPENAI_API_KEY=********" in result.diff
    assert dotenv.read_text() == DOTENV
    assert not get_security_manager().vault.exists()


def test_migration_moves_credentials_and_settings(dotenv: Path, fast_vault) -> None:
    result = migrate(dotenv)
    assert result.changed and not result.dry_run
    sm = get_security_manager()
    assert sm.vault.names() == ["AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "OPENAI_API_KEY", "S2_API_KEY"]
    assert sm.vault.get("AWS_SECRET_ACCESS_KEY") == AWS
    new = dotenv.read_text()
    assert OPENAI not in new and AWS not in new and "MODEL_NAME=gpt-4o" in new
    assert "# OPENAI_API_KEY: moved to the sci_ext vault" in new
    assert oct(dotenv.stat().st_mode & 0o777) == "0o600"
    toml = (fast_vault["project"] / "sci_ext.toml").read_text()
    assert "ttl_seconds = 600" in toml and "max_attempts = 5" in toml
    from sci_ext.core.config import ConfigManager

    assert ConfigManager().config.cache.ttl_seconds == 600
    backup = result.backup
    assert backup is not None and backup.name.endswith(".sealed")
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    assert OPENAI.encode() not in backup.read_bytes() and AWS.encode() not in backup.read_bytes()
    assert restore_dotenv_backup(backup) == DOTENV
    assert "copied into [dotenv] of sci_ext.toml (also kept in .env): MODEL_NAME" in result.summary()
    assert ConfigManager().config.dotenv.extra == {"MODEL_NAME": "gpt-4o"}
    assert scan_for(OPENAI, fast_vault["project"], fast_vault["XDG_DATA_HOME"], fast_vault["XDG_STATE_HOME"]) == []
    events = [r["event"] for r in sm.audit_log.records()]
    assert "dotenv.migrate" in events
    again = migrate(dotenv)
    assert not again.changed and dotenv.read_text() == new


def test_existing_vault_value_is_replaced_and_said(dotenv: Path) -> None:
    get_security_manager().set_secret("HF_TOKEN", "older-token-value")
    result = migrate(dotenv)
    assert "replaced the vault's previous value of: HF_TOKEN" in result.summary()
    assert get_security_manager().get_secret("HF_TOKEN") == "hf_dotenv_abcdefghijkl"


def test_bad_setting_stops_before_anything_is_written(dotenv: Path) -> None:
    dotenv.write_text(DOTENV + "SCI_EXT_CACHE__TTL_SECOND=5\n")
    with pytest.raises(ConfigError, match=r"\.env line 9: unknown config key 'cache.ttl_second'"):
        migrate(dotenv)
    assert not get_security_manager().vault.exists()


def test_cli_config_migrate_dotenv(dotenv: Path, fast_vault) -> None:
    dry = cli("config", "migrate", str(dotenv), "--dry-run", cwd=fast_vault["project"])
    assert dry.returncode == 0, dry.stderr
    assert OPENAI not in dry.stdout and "would update" in dry.stdout
    res = cli("config", "migrate", str(dotenv), cwd=fast_vault["project"])
    assert res.returncode == 0, res.stderr
    assert "4 credential(s) into the vault" in res.stdout and OPENAI not in res.stdout
    assert get_security_manager().vault.get("OPENAI_API_KEY") == OPENAI


def test_plain_keys_only_go_into_config_without_touching_the_env_file(sci_env) -> None:
    path = sci_env["project"] / ".env"
    path.write_text("MODEL_NAME=gpt-4o\nNUM_WORKERS=4\n")
    result = migrate(path)
    assert result.changed and result.backup is None
    assert path.read_text() == "MODEL_NAME=gpt-4o\nNUM_WORKERS=4\n"
    from sci_ext.core.config import ConfigManager

    assert ConfigManager().config.dotenv.extra == {"MODEL_NAME": "gpt-4o", "NUM_WORKERS": "4"}
    assert not migrate(path).changed


# -- V1: a realistic AI-Scientist .env never puts a credential into a config file ---------------

FIXTURE = Path(__file__).parents[1] / "data" / "ai_scientist.env"
VAULTED = {
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "S2_API_KEY",
    "HF_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "DATABASE_URL",
    "MY_SERVICE_PASSPHRASE",
    "WANDB_API_KEY",
    "SLACK_WEBHOOK_TOKEN",
}
LEFT = ("SCI_EXT_VAULT_PASSPHRASE", "SCI_EXT_CACHE__REDIS_URL", "SCI_EXT_CACHE__REDIS_SIGNING_KEY")


@pytest.fixture
def ai_scientist_env(fast_vault) -> tuple[Path, dict[str, str]]:
    register()
    path = fast_vault["project"] / ".env"
    path.write_text(FIXTURE.read_text())
    path.chmod(0o600)
    values = {e.key: e.value for e in parse_dotenv(path)[0]}
    return path, values


def _credential_values(values: dict[str, str]) -> list[str]:
    return [values[k] for k in (*VAULTED, *LEFT)]


def test_fixture_is_a_realistic_30_line_env(ai_scientist_env) -> None:
    path, values = ai_scientist_env
    assert len(path.read_text().splitlines()) >= 30 and len(values) == 24
    assert {k for k, v in values.items() if is_credential(k, v)} == VAULTED | set(LEFT)


def test_ai_scientist_dry_run_masks_every_credential(ai_scientist_env) -> None:
    path, values = ai_scientist_env
    result = migrate(path, dry_run=True)
    shown = result.summary() + result.diff
    leaked = [v for v in _credential_values(values) if v in shown]
    assert leaked == [], "dry-run shows credential values"
    for fragment in ("FAKEredispass123", "FAKEdbpass456"):  # the password inside a URL
        assert fragment not in shown
    for key in (*VAULTED, *LEFT):
        assert f"{key}=********" in result.diff
    assert path.read_text() == FIXTURE.read_text()


def test_ai_scientist_migration_writes_no_credential_into_a_config_file(ai_scientist_env, fast_vault) -> None:
    path, values = ai_scientist_env
    result = migrate(path)
    toml_path = fast_vault["project"] / "sci_ext.toml"
    toml = toml_path.read_text()
    assert [v for v in _credential_values(values) if v in toml] == []
    assert "FAKEredispass123" not in toml and "FAKEdbpass456" not in toml and "[dotenv]" in toml
    assert "ttl_seconds = 86400" in toml and "max_attempts = 5" in toml and 'log_level = "DEBUG"' in toml
    sm = get_security_manager()
    assert set(sm.vault.names()) == VAULTED
    assert sm.vault.get("DATABASE_URL") == values["DATABASE_URL"]
    new_env = path.read_text()
    for key in LEFT:  # read by sci_ext from the environment: left where they were, and said so
        assert f"{key}={values[key]}" in new_env
        assert key in result.summary()
    assert "left in .env" in result.summary()
    for key in VAULTED:
        assert values[key] not in new_env and f"# {key}: moved to the sci_ext vault" in new_env
    from sci_ext.core.config import ConfigManager

    extra = ConfigManager().config.dotenv.extra
    assert set(extra) == {"AWS_REGION_NAME", "MLFLOW_TRACKING_URI", "MODEL_NAME", "NUM_WORKERS", "CUDA_VISIBLE_DEVICES"}
    # Nothing secret anywhere else in the project, the state (audit) or the data dirs except .env and the vault.
    for value in _credential_values(values):
        hits = scan_for(value, fast_vault["project"], fast_vault["XDG_STATE_HOME"], fast_vault["XDG_CONFIG_HOME"])
        assert {h.name for h in map(Path, hits)} <= {".env"}, hits
    assert not migrate(path).changed


def test_a_url_with_a_password_is_a_credential_whatever_its_name() -> None:
    assert is_credential("DATABASE_URL", "postgres://app:pw-123@db/app")
    assert is_credential("BROKER", "amqp://user:hunter2@mq:5672/")
    assert not is_credential("DATABASE_URL", "postgres://db/app")
    assert not is_credential("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert is_credential("SCI_EXT_CACHE__REDIS_SIGNING_KEY", "x") and is_credential("SCI_EXT_VAULT_PASSPHRASE")
    assert not is_credential("SCI_EXT_SECURITY__KEY_DIR", "/home/u/keys")  # a setting's name is not the test
    assert is_credential("SCI_EXT_BREAKER__REDIS_URL", "redis://:pw@h:6379/0")
    assert not is_credential("SCI_EXT_BREAKER__REDIS_URL", "redis://h:6379/0")
