"""The built-in configuration sections, as dataclasses.

Each field carries its documentation and constraints in ``metadata`` so that one
validator (``schema.py``) checks every section, including third-party ones, the
same way.  Defaults that depend on the environment (XDG directories) are computed
when a manager builds its defaults, not at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BUILTIN_SECTIONS",
    "BreakerConfig",
    "CacheConfig",
    "CoreConfig",
    "MonitoringConfig",
    "RetryConfig",
    "SecurityConfig",
    "setting",
]


def setting(
    default: Any = None,
    *,
    doc: str,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
    default_factory: Any = None,
    secret: bool = False,
) -> Any:
    """Declare one configuration field with its documentation and constraints."""
    meta = {"doc": doc, "min": min, "max": max, "choices": choices, "secret": secret}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def default_state_dir() -> str:
    """``$XDG_STATE_HOME/sci_ext`` (``~/.local/state/sci_ext``)."""
    return str(_xdg("XDG_STATE_HOME", ".local/state") / "sci_ext")


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/sci_ext/cells`` (``~/.cache/sci_ext/cells``)."""
    return str(_xdg("XDG_CACHE_HOME", ".cache") / "sci_ext" / "cells")


def default_vault_path() -> str:
    """``$XDG_DATA_HOME/sci_ext/vault.json`` (``~/.local/share/sci_ext/vault.json``)."""
    return str(_xdg("XDG_DATA_HOME", ".local/share") / "sci_ext" / "vault.json")


def default_key_dir() -> str:
    """``$XDG_CONFIG_HOME/sci_ext/keys``: where a generated vault key file goes (not beside the vault)."""
    return str(_xdg("XDG_CONFIG_HOME", ".config") / "sci_ext" / "keys")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass
class CoreConfig:
    """Settings shared by every feature."""

    state_dir: str = setting(
        default_factory=default_state_dir,
        doc="Directory shared by kernels and the server (breaker state, metrics, logs).",
    )
    log_level: str = setting("INFO", doc="Level of sci_ext's JSON log.", choices=LOG_LEVELS)
    environment: str = setting("development", doc="Free-form name of this deployment, shown in logs and status.")
    hot_reload: bool = setting(True, doc="Reload config files when they change.")
    reload_interval_seconds: float = setting(
        2.0, doc="How often config files are checked for changes.", min=0.1, max=3600
    )
    log_format: str = setting(
        "json", doc="sci_ext's log lines: json (one object a line) or text.", choices=("json", "text")
    )
    trusted_dirs: list[str] = setting(  # noqa: RUF009 - setting() returns a dataclass field
        default_factory=list,
        doc="Directories whose sci_ext.toml is used even if others can write there (user file or env only; * = all).",
    )


@dataclass
class CacheConfig:
    """Settings of ``%%cached`` and ``cache_result``."""

    dir: str = setting(default_factory=default_cache_dir, doc="diskcache directory shared by kernels (mode 0700).")
    backend: str = setting("disk", doc="Default backend of %%cached.", choices=("memory", "disk", "redis"))
    ttl_seconds: float | None = setting(None, doc="Time to live of an entry; none keeps it until evicted.", min=0)
    size_limit_bytes: int = setting(
        4 * 2**30, doc="Disk cache size limit; least recently used entries go first.", min=2**20
    )
    memory_max_items: int = setting(256, doc="Entries kept by the in-memory layer of cache_result.", min=0, max=10**7)
    mmap_min_bytes: int = setting(2**20, doc="Arrays at least this large are stored for memory-mapped restore.", min=0)
    redis_url: str | None = setting(None, doc="Redis URL for sharing across machines.")
    redis_signing_key: str | None = setting(
        None,
        doc="Shared secret: Redis entries are HMAC-SHA256 signed and checked before unpickling.",
        secret=True,
    )
    redis_timeout_seconds: float = setting(
        2.0, doc="Connect and socket timeout of Redis; slower counts as down.", min=0.01, max=600
    )
    notify: bool = setting(True, doc="Show a one-line notice when a cell is restored.")
    auto: bool = setting(False, doc="Cache every code cell as if it had %%cached (%sci_cache auto on|off).")


@dataclass
class RetryConfig:
    """Defaults of ``%%guarded`` and ``retry_with_backoff``."""

    max_attempts: int = setting(3, doc="Attempts in all, the first included.", min=1, max=100)
    initial_wait: float = setting(0.5, doc="First wait in seconds.", min=0, max=3600)
    max_wait: float = setting(30.0, doc="Upper bound of one wait in seconds.", min=0, max=3600)
    multiplier: float = setting(2.0, doc="Growth factor of the exponential backoff.", min=1, max=10)
    jitter: float = setting(1.0, doc="Random extra wait of up to this many seconds.", min=0)
    timeout: float = setting(300.0, doc="Upper bound of the total time spent retrying, in seconds.", min=0)
    max_retry_after: float = setting(120.0, doc="Cap on a server's Retry-After in seconds.", min=0, max=86400)


@dataclass
class BreakerConfig:
    """Defaults of circuit breakers."""

    fail_max: int = setting(5, doc="Consecutive failures that open a breaker.", min=1, max=10**6)
    reset_timeout: float = setting(60.0, doc="Seconds an open breaker waits before a trial call.", min=0)
    redis_url: str | None = setting(None, doc="Redis URL for breakers shared across machines.")


@dataclass
class SecurityConfig:
    """Vault, API keys, lockout and audit."""

    vault_path: str = setting(default_factory=default_vault_path, doc="Encrypted vault file.")
    kdf_n: int = setting(2**17, doc="scrypt cost (a power of two).", min=2**14, max=2**22)
    kdf_r: int = setting(8, doc="scrypt block size.", min=1, max=64)
    kdf_p: int = setting(1, doc="scrypt parallelism.", min=1, max=16)
    max_auth_failures_per_minute: int = setting(10, doc="Failed validations from one client before lockout.", min=1)
    lockout_seconds: float = setting(300.0, doc="How long a client stays locked out.", min=1)
    redact_outputs: bool = setting(True, doc="Replace secret values in every output.")
    key_source: str = setting(
        "auto",
        doc="Master key of a new vault: auto (keyring, else passphrase, else key file) or one of them.",
        choices=("auto", "keyring", "passphrase", "keyfile"),
    )
    key_dir: str = setting(
        default_factory=default_key_dir, doc="Directory of generated vault key files (never the vault's)."
    )
    audit_path: str | None = setting(None, doc="Audit log (JSON lines); none: core.state_dir/audit/audit.jsonl.")


@dataclass
class MonitoringConfig:
    """Logs, metrics, health checks and alert thresholds."""

    metrics_enabled: bool = setting(True, doc="Record Prometheus metrics.")
    log_max_bytes: int = setting(10 * 2**20, doc="Size at which the JSON log rotates.", min=1024)
    log_backups: int = setting(5, doc="Rotated JSON logs kept.", min=0, max=1000)
    error_rate_threshold: float = setting(
        0.01, doc="Unused: a notebook's error rate does not alert (kept so old config files still load).", min=0, max=1
    )
    latency_threshold_seconds: float = setting(
        1.0, doc="EndpointSlow: a server endpoint's p95 response time over window_seconds above this.", min=0
    )
    cpu_threshold_percent: float = setting(
        90.0, doc="Unused: CPU never alerts and is never degraded health (kept so old config files still load).",
        min=0, max=100,
    )  # fmt: skip
    memory_threshold_percent: float = setting(
        90.0, doc="KernelMemoryNearLimit: memory use (the cgroup's limit, else the host's) at or above this.",
        min=0, max=100,
    )  # fmt: skip
    auth_failures_per_minute: int = setting(10, doc="AuthFailures: more failed API-key attempts a minute.", min=0)
    window_seconds: float = setting(300.0, doc="Window of ExternalCallsFailing and EndpointSlow (seconds).", min=1)
    failed_calls_threshold: int = setting(
        3, doc="ExternalCallsFailing: calls that gave up (retries exhausted, breaker open) within window_seconds.",
        min=1,
    )  # fmt: skip
    slow_cell_factor: float = setting(
        5.0, doc="CellRunningLong: a running cell past this many times its median.", min=1
    )
    slow_cell_min_seconds: float = setting(
        60.0, doc="CellRunningLong: and at least this many seconds past its median.", min=0
    )
    slow_cell_min_runs: int = setting(3, doc="CellRunningLong: earlier runs of the cell needed for a median.", min=1)
    check_failing_seconds: float = setting(60.0, doc="HealthCheckFailing: a health check failing for this long.", min=0)
    min_free_disk_bytes: int = setting(
        2**30, doc="Free disk below this makes the disk check degraded (DiskNearlyFull after 5 min).", min=0
    )
    log_stderr: bool = setting(False, doc="Also write sci_ext's log to stderr.")
    check_interval_seconds: float = setting(
        30.0, doc="How often the background monitor runs health checks and samples CPU/memory.", min=1
    )
    check_timeout_seconds: float = setting(5.0, doc="A health check running longer fails.", min=0.01)


@dataclass
class DotenvConfig:
    """Plain (non-credential) keys migrated from a ``.env`` file, kept as strings."""

    __sci_allow_extra__ = True

    extra: dict[str, Any] = field(default_factory=dict, metadata={"doc": "KEY -> value from the .env file."})


BUILTIN_SECTIONS: dict[str, type] = {
    "core": CoreConfig,
    "cache": CacheConfig,
    "retry": RetryConfig,
    "breaker": BreakerConfig,
    "security": SecurityConfig,
    "monitoring": MonitoringConfig,
    "dotenv": DotenvConfig,
}


def _pairs(entries: list[str], what: str) -> dict[str, str]:
    """``["name=value", ...]`` as a dict; a malformed entry is a ValueError naming it."""
    out: dict[str, str] = {}
    for entry in entries:
        name, sep, value = str(entry).rpartition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{what}: expected NAME=VALUE, got {entry!r}")
        out[name.strip()] = value.strip()
    return out


def parse_budgets(entries: list[str]) -> dict[str, float]:
    """``llm.budgets`` entries (``"paper=20"``) as ``{name: usd}``."""
    out = {}
    for name, value in _pairs(entries, "llm.budgets").items():
        try:
            usd = float(value)
        except ValueError:
            raise ValueError(f"llm.budgets: {name}={value!r} is not a number of US dollars") from None
        if usd < 0:
            raise ValueError(f"llm.budgets: {name}={value} must be >= 0")
        out[name] = usd
    return out


def parse_prices(entries: list[str]) -> dict[str, tuple[float, ...]]:
    """``llm.prices`` entries (``"my-model=input/output[/cached_input[/cache_write]]"``, USD per million tokens)."""
    out = {}
    for model, value in _pairs(entries, "llm.prices").items():
        try:
            rates = tuple(float(part) for part in value.split("/"))
        except ValueError:
            raise ValueError(
                f"llm.prices: {model}={value!r}: expected input/output[/cached_input[/cache_write]]"
            ) from None
        if not 2 <= len(rates) <= 4 or min(rates) < 0:
            raise ValueError(
                f"llm.prices: {model}={value!r}: expected 2 to 4 non-negative numbers (USD per million tokens)"
                " input/output[/cached_input[/cache_write]]"
            )
        out[model] = rates
    return out


@dataclass
class LLMConfig:
    """LLM usage and cost accounting of the openai and anthropic SDKs (docs/llm.md)."""

    instrument: bool = setting(True, doc="Record calls made through the openai and anthropic SDKs.")
    notify_cost_usd: float | None = setting(
        0.0, doc="A cell that spent more than this (USD) says so; none never does.", min=0
    )
    budget_usd: float | None = setting(
        None, doc="Budget of this kernel (USD); once spent, calls fail before sending.", min=0
    )
    budgets: list[str] = setting(  # noqa: RUF009 - every field is declared this way
        default_factory=list,
        doc="Named budgets shared by every kernel on the machine (and over llm.redis_url): NAME=USD entries.",
    )
    redis_url: str | None = setting(None, doc="Redis URL sharing named budgets across machines.")
    alert_ratio: float = setting(0.8, doc="Share of a budget at which an alert fires.", min=0, max=1)
    prices: list[str] = setting(  # noqa: RUF009 - every field is declared this way
        default_factory=list,
        doc="Price overrides, USD per million tokens: MODEL=input/output[/cached_input[/cache_write]].",
    )
    model_labels: list[str] = setting(  # noqa: RUF009 - every field is declared this way
        default_factory=list, doc="Models that always get their own metrics label (others: the first max_model_labels)."
    )
    max_model_labels: int = setting(20, doc="Distinct model labels in metrics; further models count as 'other'.", min=0)
    history: bool = setting(True, doc="Keep a machine-wide history in core.state_dir/llm for 'jupyter sci llm'.")
    max_attempts: int | None = setting(
        20, doc="HTTP attempts in a row that may fail at one provider and model (the SDK's retries and the caller's "
        "own loops counted together, per cell or script run) before sci_ext refuses the next; none: no bound.", min=1,
    )  # fmt: skip
    max_retry_seconds: float | None = setting(
        600.0, doc="Seconds after the first of those failures that retrying may go on before sci_ext refuses the "
        "next attempt; none: no bound.", min=0,
    )  # fmt: skip
    max_failed_attempts: int | None = setting(
        500, doc="Failed HTTP attempts in one cell (one script run) before sci_ext refuses every further attempt "
        "there; none: no bound.", min=1,
    )  # fmt: skip
    breaker: list[str] = setting(  # noqa: RUF009 - every field is declared this way
        default_factory=list,
        doc="Circuit breakers that SDK calls go through: NAME (every provider) or PROVIDER=NAME entries; an open "
        "breaker refuses the attempt before it is sent.",
    )

    def __post_init__(self) -> None:
        parse_budgets(self.budgets)
        parse_prices(self.prices)
        for entry in self.breaker:
            who, sep, name = entry.partition("=")
            if not who.strip() or (sep and not name.strip()):
                raise ValueError(f"llm.breaker: {entry!r}: expected NAME or PROVIDER=NAME")


BUILTIN_SECTIONS["llm"] = LLMConfig
