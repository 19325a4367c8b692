"""The cache: content keys, entry format, stores, the ``cache_result`` decorator.

Importing this package is cheap; diskcache, redis, numpy, xxhash and cloudpickle
load on first use.
"""

from __future__ import annotations

from .decorator import cache_result
from .keys import UnhashableInput, hash_value
from .stats import CacheEvent, cache_counters, subscribe

__all__ = ["CacheEvent", "UnhashableInput", "cache_counters", "cache_result", "hash_value", "subscribe"]
