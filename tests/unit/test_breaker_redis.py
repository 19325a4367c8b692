"""Breakers and rate limits shared across machines through a real redis-server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from guard_fixtures import run_breaker_process

from sci_ext.core import get_config_manager
from sci_ext.core.errors import CircuitOpenError, RateLimitExceeded, TransientError
from sci_ext.core.resilience import OPEN, CircuitBreaker, RateLimiter, RedisStore

pytestmark = pytest.mark.redis
REPO = Path(__file__).resolve().parents[2]


def _run(mode: str, state_home: Path, redis_url: str) -> str:
    env = {"XDG_STATE_HOME": str(state_home), "SCI_EXT_BREAKER__REDIS_URL": redis_url}
    return run_breaker_process(mode, "remote-api", env=env, show_store=True)


def test_two_processes_with_separate_state_dirs_share_a_breaker(redis_server, tmp_path):
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    assert "closed" in _run("look", machine_b, redis_server.url)
    out = _run("trip", machine_a, redis_server.url)
    assert f"store: redis (127.0.0.1:{redis_server.port}/0)" in out
    assert "refused: circuit breaker 'remote-api' is open after 2 consecutive failures" in out
    assert "refused:" in _run("look", machine_b, redis_server.url)  # the other "machine" sees it
    # Nothing about this breaker was written to either local state dir's disk store.
    get_config_manager().set("breaker.redis_url", redis_server.url)
    assert CircuitBreaker("remote-api").state == OPEN


def test_redis_breaker_and_bucket_in_process_and_degradation_when_redis_stops(redis_server, caplog):
    get_config_manager().set("cache.redis_url", redis_server.url)  # the cache's URL is used too
    breaker = CircuitBreaker("flappy", fail_max=1, reset_timeout=60)
    assert isinstance(breaker.store, RedisStore)
    with pytest.raises(TransientError):
        breaker.call(lambda: (_ for _ in ()).throw(TransientError("down")))
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    limiter = RateLimiter("redis-bucket", "1/hour")
    limiter.acquire()
    with pytest.raises(RateLimitExceeded):
        limiter.acquire(block=False)
    breaker.reset()
    assert breaker.call(lambda: "ok") == "ok"
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="sci_ext.resilience"):
        # Redis is gone: the breaker keeps working on local state and says so once.
        assert breaker.call(lambda: "still ok") == "still ok"
        with pytest.raises(TransientError):
            breaker.call(lambda: (_ for _ in ()).throw(TransientError("down")))
        assert breaker.state == OPEN
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1 and "using local state" in warnings[0].getMessage()
