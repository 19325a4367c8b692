"""sci_ext's library: everything a script or pipeline can use without Jupyter.

Names are imported lazily (PEP 562) so that ``import sci_ext`` stays cheap; the
heavy parts (tenacity, diskcache, cryptography, redis) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# Public name -> module that defines it.  One line per name keeps merges simple.
_EXPORTS: dict[str, str] = {
    "SciExtError": "errors",
    "ConfigError": "errors",
    "SecurityError": "errors",
    "VaultLockedError": "errors",
    "AuthenticationError": "errors",
    "RateLimitExceeded": "errors",
    "TransientError": "errors",
    "PermanentError": "errors",
    "CircuitOpenError": "errors",
    "CacheError": "errors",
    "Config": "config",
    "ConfigManager": "config",
    "get_config_manager": "config",
    "get_config": "config",
    "get_core_config": "config",
    "get_rag_config": "config",
    "register_section": "config",
    "setting": "config",
    "cache_result": "cache",
    "cache_counters": "cache",
    "hash_value": "cache",
    "handle_errors": "resilience",
    "retry_with_backoff": "resilience",
    "circuit_breaker": "resilience",
    "CircuitBreaker": "resilience",
    "classify_error": "resilience",
    "ErrorCategory": "resilience",
    "RateLimiter": "resilience",
    "get_security_manager": "security",
    "SecurityManager": "security",
    "performance_monitor": "telemetry",
    "get_logger": "telemetry",
    "health_check": "telemetry",
    "run_health_checks": "telemetry",
    "collect_status": "telemetry",
    "generate_metrics_text": "telemetry",
    "BudgetExceeded": "errors",
    "get_llm_usage": "llm",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - built from the export table

if TYPE_CHECKING:  # pragma: no cover
    from .cache import cache_counters, cache_result, hash_value  # noqa: F401
    from .config import (  # noqa: F401
        Config,
        ConfigManager,
        get_config,
        get_config_manager,
        get_core_config,
        get_rag_config,
        register_section,
        setting,
    )
    from .errors import (  # noqa: F401
        AuthenticationError,
        CacheError,
        CircuitOpenError,
        ConfigError,
        PermanentError,
        RateLimitExceeded,
        SciExtError,
        SecurityError,
        TransientError,
        VaultLockedError,
    )
    from .resilience import (  # noqa: F401
        CircuitBreaker,
        ErrorCategory,
        RateLimiter,
        circuit_breaker,
        classify_error,
        handle_errors,
        retry_with_backoff,
    )
    from .security import SecurityManager, get_security_manager  # noqa: F401
    from .telemetry import (  # noqa: F401
        collect_status,
        generate_metrics_text,
        get_logger,
        health_check,
        performance_monitor,
        run_health_checks,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
