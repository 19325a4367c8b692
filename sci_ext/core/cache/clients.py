"""SDK and HTTP clients in cache entries: stored as their settings, rebuilt on a hit, never pickled.

``client, model = create_client(...)`` in a cached cell binds an ``openai.OpenAI`` (or
``AzureOpenAI``), an ``anthropic.Anthropic`` (or ``AnthropicBedrock``/``AnthropicVertex``)
or an ``httpx``/``httpx2`` ``Client``; none of them pickles (``cannot pickle
'_thread.RLock'``), and pickling one would write its API key into the entry.  The
:func:`reduce_client` hook of :mod:`.serialize` stores such a client as a
:class:`ClientSpec`: its class, base URL, timeout, ``max_retries``, default headers
without credentials, and the non-secret settings of its kind (AWS region, Vertex
project and region, Azure endpoint, deployment and API version).  On a hit
:func:`rebuild` makes a new client of the same class from those settings; the SDK
takes its credentials from the environment as it did the first time
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, AWS's chain...), or sci_ext's vault holds
them (``%sci_secret``).  No credential is ever in the entry.

Nothing here imports an SDK: a value is recognised by its class's module and name.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import CacheError

__all__ = ["MODULES", "ClientSpec", "credential_header", "rebuild", "reduce_client", "spec_of"]

#: The modules whose classes :func:`reduce_client` looks at (the serializer asks it about no other).
MODULES = ("openai", "anthropic", "httpx")

#: Classes stored as settings, by (top-level package, class name).
_SDK_CLIENTS = {
    ("openai", "OpenAI"), ("openai", "AsyncOpenAI"), ("openai", "AzureOpenAI"), ("openai", "AsyncAzureOpenAI"),
    ("anthropic", "Anthropic"), ("anthropic", "AsyncAnthropic"), ("anthropic", "AnthropicBedrock"),
    ("anthropic", "AsyncAnthropicBedrock"), ("anthropic", "AnthropicVertex"), ("anthropic", "AsyncAnthropicVertex"),
}  # fmt: skip
_HTTP_CLIENTS = {("httpx", "Client"), ("httpx", "AsyncClient"), ("httpx2", "Client"), ("httpx2", "AsyncClient")}

#: Non-secret constructor settings read from the client, by class name (attribute -> keyword).
_EXTRA = {
    "AnthropicBedrock": {"aws_region": "aws_region", "aws_profile": "aws_profile"},
    "AnthropicVertex": {"region": "region", "project_id": "project_id"},
    "AzureOpenAI": {
        "_azure_endpoint": "azure_endpoint",
        "_azure_deployment": "azure_deployment",
        "_api_version": "api_version",
    },
    "OpenAI": {"organization": "organization", "project": "project"},
}
#: Credentials the SDK reads from the environment, looked up in the vault when the environment lacks them.
_CREDENTIAL_ENV = {
    "OpenAI": ("api_key", "OPENAI_API_KEY"),
    "AzureOpenAI": ("api_key", "AZURE_OPENAI_API_KEY"),
    "Anthropic": ("api_key", "ANTHROPIC_API_KEY"),
}
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|signature|credential|session", re.I)


@dataclass(frozen=True)
class ClientSpec:
    """What rebuilds a client: no credential, only settings (this object is what the entry holds)."""

    module: str  # where the class is imported from (openai, anthropic, httpx2, ...)
    name: str  # the class name
    base_url: str | None
    timeout: Any  # None, a number, or {"connect", "read", "write", "pool"} seconds
    max_retries: int | None
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def credential_header(name: str) -> bool:
    """Whether a header of this name may carry a credential (it is never stored)."""
    return bool(_SECRET_HEADER.search(name))


def _kind(value: Any) -> tuple[str, str] | None:
    cls = type(value)
    key = (cls.__module__.split(".", 1)[0], cls.__name__)
    if key in _SDK_CLIENTS or key in _HTTP_CLIENTS:
        return key
    return None


def _timeout(value: Any) -> Any:
    if value is None or isinstance(value, int | float):
        return value
    parts = {k: getattr(value, k, None) for k in ("connect", "read", "write", "pool")}
    if all(v is None or isinstance(v, int | float) for v in parts.values()):
        return parts
    return None  # an unknown timeout object: the SDK's default on rebuild


def _headers(client: Any, sdk: bool) -> dict[str, str]:
    raw = getattr(client, "_custom_headers", None) if sdk else getattr(client, "headers", None)
    out: dict[str, str] = {}
    for name, value in dict(raw or {}).items():
        if isinstance(name, str) and isinstance(value, str) and not credential_header(name):
            out[name] = value
    return out


def spec_of(client: Any) -> ClientSpec | None:
    """The settings of ``client`` if it is a client this module stores, else None."""
    kind = _kind(client)
    if kind is None:
        return None
    package, name = kind
    sdk = kind in _SDK_CLIENTS
    base = getattr(client, "base_url", None)
    extra: dict[str, Any] = {}
    plain = name.removeprefix("Async")
    for attribute, keyword in _EXTRA.get(plain, {}).items():
        value = getattr(client, attribute, None)
        if value is not None:
            extra[keyword] = str(value) if not isinstance(value, str | int | float | bool) else value
    if not sdk:
        extra["follow_redirects"] = bool(getattr(client, "follow_redirects", False))
    return ClientSpec(
        module=package,
        name=name,
        base_url=str(base) if base is not None and str(base) else None,
        timeout=_timeout(getattr(client, "timeout", None)),
        max_retries=getattr(client, "max_retries", None) if sdk else None,
        headers=_headers(client, sdk),
        extra=extra,
    )


def _vault_secret(env: str) -> str | None:
    try:
        from ..security import get_security_manager

        value = get_security_manager().get_secret(env)
    except Exception:  # no vault, or locked: the SDK says what is missing
        return None
    return value if isinstance(value, str) and value else None


def rebuild(spec: ClientSpec) -> Any:
    """A new client made from ``spec``; its credentials come from the environment or the vault."""
    try:
        cls = getattr(importlib.import_module(spec.module), spec.name)
    except (ImportError, AttributeError) as exc:
        raise CacheError(f"cached {spec.module}.{spec.name} client: cannot import it to rebuild ({exc})") from None
    kwargs: dict[str, Any] = dict(spec.extra)
    plain = spec.name.removeprefix("Async")
    if spec.timeout is not None:
        if isinstance(spec.timeout, dict):
            timeout_module = importlib.import_module("httpx" if spec.module == "httpx" else "httpx2")
            kwargs["timeout"] = timeout_module.Timeout(**spec.timeout)
        else:
            kwargs["timeout"] = spec.timeout
    if spec.module in ("httpx", "httpx2"):
        if spec.base_url:
            kwargs["base_url"] = spec.base_url
        if spec.headers:
            kwargs["headers"] = spec.headers
        return cls(**kwargs)
    if spec.max_retries is not None:
        kwargs["max_retries"] = spec.max_retries
    if spec.headers:
        kwargs["default_headers"] = spec.headers
    if spec.base_url and "azure_endpoint" not in kwargs:  # Azure's URL is made from endpoint and deployment
        kwargs["base_url"] = spec.base_url
    credential = _CREDENTIAL_ENV.get(plain)
    if credential is not None and not os.environ.get(credential[1]):
        secret = _vault_secret(credential[1])
        if secret is not None:
            kwargs[credential[0]] = secret
    try:
        return cls(**kwargs)
    except Exception as exc:
        env = f" (set {credential[1]} in the environment or with %sci_secret)" if credential else ""
        raise CacheError(
            f"cached {spec.module}.{spec.name} client: rebuilding it failed: {type(exc).__name__}: {exc}{env}"
        ) from None


def reduce_client(value: Any) -> Any:
    """The :mod:`.serialize` reducer hook: ``(rebuild, (spec,))`` for a client, else ``NotImplemented``."""
    spec = spec_of(value)
    if spec is None:
        return NotImplemented
    return rebuild, (spec,)
