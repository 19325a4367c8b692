"""The provider that bills a call: from the SDK client's class, else from its base URL.

``anthropic.AnthropicBedrock`` is billed by AWS, ``AnthropicVertex`` by Google,
``AzureOpenAI`` by Azure; the plain ``OpenAI``/``Anthropic`` clients pointed at another
provider's API (DeepSeek, OpenRouter, Gemini's OpenAI-compatible endpoint, ...) are
billed by that provider, which the price table recognises by its API URL.  Names are
``genai-prices`` provider ids (``aws``, ``google``, ``azure``, ``deepseek``, ...), so the
price lookup uses them as they are.  Answers are cached per (class, base URL): the call
path pays one dict lookup.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["BY_CLASS", "billing_provider", "provider_for_url"]

#: Client class name -> the provider that bills its calls (sync and async classes alike).
BY_CLASS = {
    "AnthropicBedrock": "aws",
    "AsyncAnthropicBedrock": "aws",
    "AnthropicBedrockMantle": "aws",
    "AsyncAnthropicBedrockMantle": "aws",
    "AnthropicVertex": "google",
    "AsyncAnthropicVertex": "google",
    "AzureOpenAI": "azure",
    "AsyncAzureOpenAI": "azure",
}

_cache: dict[tuple[type, str], str] = {}
_lock = threading.Lock()


def provider_for_url(url: str) -> str | None:
    """The ``genai-prices`` provider whose API URL pattern ``url`` matches, or None."""
    import re

    from .prices import snapshot

    snap = snapshot()
    if snap is None or not url.startswith("http"):
        return None
    for provider in snap.providers:
        pattern = getattr(provider, "api_pattern", None)
        try:
            if pattern and re.match(pattern, url):
                return str(provider.id)
        except re.error:  # a pattern this Python cannot compile: not this one
            continue
    return None


def billing_provider(client: Any, sdk: str) -> str:
    """Who bills the calls of ``client`` (an SDK client of package ``sdk``); ``sdk`` when nothing says otherwise."""
    cls = type(client)
    base = getattr(client, "_base_url", None)
    key = (cls, str(base) if base is not None else "")
    found = _cache.get(key)
    if found is not None:
        return found
    found = BY_CLASS.get(cls.__name__)
    if found is None:
        try:
            found = provider_for_url(key[1]) if key[1] else None
        except Exception:  # the table is unusable: the SDK's own provider
            found = None
        # An OpenAI-compatible endpoint of a provider other than the SDK's own bills the call;
        # the SDK's own URL (or a local server the table does not know) keeps the SDK's name.
        found = found or sdk
    with _lock:
        if len(_cache) > 256:  # clients made with ever-new URLs: keep the cache bounded
            _cache.clear()
        _cache[key] = found
    return found
