"""The one error hierarchy of sci_ext (docs/api.md, "Errors").

Every exception sci_ext raises on purpose derives from :class:`SciExtError`, so a
user can catch all of them with one ``except`` clause and tell them apart by class.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BudgetExceeded",
    "CacheError",
    "CircuitOpenError",
    "ConfigError",
    "PermanentError",
    "RateLimitExceeded",
    "SciExtError",
    "SecurityError",
    "TransientError",
    "VaultLockedError",
]


class SciExtError(Exception):
    """Base class of every error sci_ext raises on purpose."""


class ConfigError(SciExtError, ValueError):
    """A configuration value, file or command is invalid.

    The message names where the problem is (file, line, section and key) and,
    when possible, what was probably meant.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        path: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.path = path
        self.line = line


class SecurityError(SciExtError):
    """Base class of vault, API-key and authentication errors."""


class VaultLockedError(SecurityError):
    """The vault is locked or its master key is not available."""


class AuthenticationError(SecurityError):
    """A credential (API key, passphrase) was rejected."""


class RateLimitExceeded(SecurityError):
    """A client made too many requests or failed validations and is locked out."""


class TransientError(SciExtError):
    """A failure that may succeed when retried (network blip, 429, 5xx)."""


class PermanentError(SciExtError):
    """A failure that will fail again when retried (bad request, 4xx)."""


class CircuitOpenError(SciExtError):
    """A circuit breaker is open and refuses calls until it may try again."""


class CacheError(SciExtError):
    """A cache entry could not be stored, read or keyed."""


class BudgetExceeded(SciExtError):
    """An LLM budget is spent: the call was refused before it was sent.

    ``budget`` names it (``"kernel"`` for ``llm.budget_usd``), ``spent_usd`` and
    ``limit_usd`` say how much; the message says how to raise it.
    """

    def __init__(self, message: str, *, budget: str, spent_usd: float, limit_usd: float) -> None:
        super().__init__(message)
        self.budget = budget
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd
