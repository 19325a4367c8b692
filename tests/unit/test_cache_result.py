"""``cache_result``: layers, keys, single flight, sync and async, stats hook, real Redis."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings

import numpy as np
import pytest

from sci_ext import cache_result
from sci_ext.core.cache import cache_counters, stats
from sci_ext.core.cache.decorator import CacheWarning


def test_layers_fill_each_other_and_count_per_layer():
    calls = []

    @cache_result(ttl_seconds=60)
    def double(x, scale=2):
        calls.append(x)
        return x * scale

    assert double(3) == 6 and double(3) == 6 and double(x=3) == 6 and double(3, scale=2) == 6
    assert calls == [3]  # positional, keyword and default spellings share one key
    assert double.cache_stats() == {"memory": {"hits": 3, "misses": 1}, "disk": {"hits": 0, "misses": 1}}
    double.memory_only = None
    # A second decoration (a new process, as far as memory is concerned) finds it on disk.

    @cache_result(ttl_seconds=60)
    def double(x, scale=2):  # noqa: F811 - same name and code: same key
        calls.append(x)
        return x * scale

    assert double(3) == 6 and calls == [3]
    assert double.cache_stats()["disk"] == {"hits": 1, "misses": 0}


def test_changed_code_or_arguments_are_misses():
    @cache_result(backend="memory")
    def f(a):
        return a + 1

    arr = np.arange(5)
    f(arr)
    f(arr.copy())
    assert f.cache_stats()["memory"] == {"hits": 1, "misses": 1}
    arr2 = arr.copy()
    arr2[0] = 9
    f(arr2)
    assert f.cache_stats()["memory"]["misses"] == 2

    @cache_result(backend="memory")
    def f(a):  # noqa: F811 - same name, edited code
        return a + 2

    assert f(1) == 3


def test_ttl_expires_memory_and_disk():
    calls = []

    @cache_result(ttl_seconds=0.2)
    def now(tag):
        calls.append(tag)
        return len(calls)

    assert now("a") == 1 and now("a") == 1
    time.sleep(0.3)
    assert now("a") == 2


def test_lru_bound_of_the_memory_layer():
    @cache_result(backend="memory", max_items=2)
    def ident(v):
        return v

    for v in (1, 2, 3, 1):
        ident(v)
    assert ident.cache_stats()["memory"] == {"hits": 0, "misses": 4}


def test_custom_key_and_unhashable_arguments():
    @cache_result(backend="memory", key=lambda client, q: q)
    def ask(client, q):
        return q.upper()

    lock = threading.Lock()
    assert ask(lock, "hi") == "HI" and ask(threading.Lock(), "hi") == "HI"
    assert ask.cache_stats()["memory"]["hits"] == 1

    @cache_result(backend="memory")
    def plain(client):
        return 1

    with pytest.warns(CacheWarning, match="pass key="):
        assert plain(lock) == 1


def test_unpicklable_result_stays_in_memory_with_a_warning():
    @cache_result()
    def make_lock(n):
        return threading.Lock()

    with pytest.warns(CacheWarning, match="cannot serialize"):
        first = make_lock(1)
    assert make_lock(1) is first


def test_single_flight_in_threads():
    started = []

    @cache_result(backend="disk")
    def slow(x):
        started.append(x)
        time.sleep(0.2)
        return x * 10

    results = []
    threads = [threading.Thread(target=lambda: results.append(slow(7))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [70] * 6 and started == [7]


async def test_async_functions_and_single_flight():
    started = []

    @cache_result(ttl_seconds=30)
    async def fetch(x):
        started.append(x)
        await asyncio.sleep(0.05)
        return {"x": x}

    results = await asyncio.gather(*(fetch(1) for _ in range(5)))
    assert results == [{"x": 1}] * 5 and started == [1]
    assert await fetch(1) == {"x": 1}

    @cache_result(backend="memory")
    async def fail(x):
        raise ValueError(x)

    with pytest.raises(ValueError):
        await asyncio.gather(fail(1), fail(1))


def test_redis_layer_shares_results_and_degrades(redis_server, tmp_path, monkeypatch):
    from sci_ext.core.config import get_config_manager

    calls = []

    def compute(v):
        calls.append(v)
        return np.full(3, v)

    get_config_manager().set("cache.redis_signing_key", "team-signing-key")
    one = cache_result(backend="redis", redis_url=redis_server.url)(compute)
    assert one(2).tolist() == [2, 2, 2]
    # Another machine: its own disk cache, the same Redis.
    get_config_manager().set("cache.dir", str(tmp_path / "other"))
    two = cache_result(backend="redis", redis_url=redis_server.url)(compute)
    assert two(2).tolist() == [2, 2, 2] and calls == [2]
    assert two.cache_stats()["redis"] == {"hits": 1, "misses": 0}
    redis_server.stop()
    get_config_manager().set("cache.dir", str(tmp_path / "third"))
    three = cache_result(backend="redis", redis_url=redis_server.url)(compute)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert three(5).tolist() == [5, 5, 5]
    assert any("redis cache layer failed" in str(w.message) for w in caught)


def test_bad_backend_and_missing_redis_url():
    with pytest.raises(ValueError, match="backend must be one of"):
        cache_result(backend="tape")(lambda: 1)
    with pytest.raises(ValueError, match="redis_url"):
        cache_result(backend="redis")(lambda: 1)


def test_bare_decorator_clear_and_events():
    seen = []
    unsubscribe = stats.subscribe(seen.append)

    @cache_result
    def inc(v):
        return v + 1

    inc(1)
    inc(1)
    unsubscribe()
    assert [(e.source, e.layer, e.result) for e in seen][:3] == [
        ("function", "memory", "miss"),
        ("function", "disk", "miss"),
        ("function", "memory", "hit"),
    ]
    assert cache_counters()[("memory", "hit")] >= 1
    inc.cache_clear()
    inc(1)
    assert inc.cache_stats()["disk"]["misses"] == 2


def test_results_holding_a_secret_stay_in_memory():
    from sci_ext.core.security.redact import get_redactor

    get_redactor().add("TOKEN", "tok-abcdef-123456")
    try:

        @cache_result()
        def token():
            return {"t": "tok-abcdef-123456"}

        with pytest.warns(CacheWarning, match="secret value"):
            first = token()
        assert token() is first
        assert token.cache_stats()["disk"] == {"hits": 0, "misses": 1}
    finally:
        get_redactor().remove("TOKEN")


def test_stacked_on_other_decorators_keys_on_the_inner_code():
    import functools

    from sci_ext.core import retry_with_backoff

    def traced(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return func(*args, **kwargs)

        return wrapper

    @cache_result()
    @retry_with_backoff(max_attempts=2)
    @traced
    def area(w, h=2):
        return w * h

    assert area(3) == 6 and area(w=3, h=2) == 6
    assert area.cache_stats()["memory"] == {"hits": 1, "misses": 1}

    @cache_result()
    @retry_with_backoff(max_attempts=2)
    @traced
    def area(w, h=2):  # noqa: F811 - edited body under the same decorators
        return w * h + 1

    assert area(3) == 7  # shared disk layer: only a changed key explains the new value
    assert area.cache_stats()["disk"] == {"hits": 0, "misses": 1}
