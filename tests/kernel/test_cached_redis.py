"""``%%cached`` through a real Redis: shared across kernels, degrading when Redis goes away."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.redis]

STATUS = "from sci_ext.kernel.cellcache.session import SESSION as _S\n(_S.last.status, _S.last.layer)"


def test_cell_cached_through_redis_hits_in_another_kernel_with_another_cache_dir(
    kernel_factory, redis_server, tmp_path
):
    cell = "%%cached --backend redis shared\nimport numpy as np\nprint('computing')\nweights = np.linspace(0, 1, 500_000)\nlabel = 'v1'"
    a = kernel_factory(
        env={
            "SCI_EXT_CACHE__REDIS_URL": redis_server.url,
            "SCI_EXT_CACHE__REDIS_SIGNING_KEY": "k1",
            "SCI_EXT_CACHE__DIR": str(tmp_path / "a"),
        }
    )
    first = a.run(cell).check()
    assert "computing" in first.stdout
    assert a.run(STATUS).check().result["text/plain"] == "('miss', 'disk+redis')"

    b = kernel_factory(
        env={
            "SCI_EXT_CACHE__REDIS_URL": redis_server.url,
            "SCI_EXT_CACHE__REDIS_SIGNING_KEY": "k1",
            "SCI_EXT_CACHE__DIR": str(tmp_path / "b"),
        }
    )
    hit = b.run(cell).check()
    assert b.run(STATUS).check().result["text/plain"] == "('hit', 'redis')"
    assert "computing" in hit.stdout and "restored from redis" in hit.stdout
    check = b.run("float(weights[-1]), weights.shape, label, weights.flags.writeable").check()
    assert check.result["text/plain"] == "(1.0, (500000,), 'v1', True)"
    # Copied into b's own disk cache: the next hit is local and memory-mapped.
    b.run(cell).check()
    assert b.run(STATUS).check().result["text/plain"] == "('hit', 'disk')"
    assert (tmp_path / "b").is_dir() and oct((tmp_path / "b").stat().st_mode & 0o777) == "0o700"


def test_redis_down_mid_session_warns_and_falls_back_to_the_local_cache(kernel_factory, redis_server, tmp_path):
    k = kernel_factory(
        env={
            "SCI_EXT_CACHE__REDIS_URL": redis_server.url,
            "SCI_EXT_CACHE__REDIS_SIGNING_KEY": "k1",
            "SCI_EXT_CACHE__REDIS_TIMEOUT_SECONDS": "0.5",
        }
    )
    k.run("%%cached one\na = 1").check()
    assert k.run(STATUS).check().result["text/plain"] == "('miss', 'disk+redis')"
    redis_server.stop()
    res = k.run("%%cached two\nprint('still runs')\nb = 2").check()
    assert "still runs" in res.stdout
    assert "Redis at redis://127.0.0.1" in res.stderr and "local cache only" in res.stderr
    assert k.run("b").check().result["text/plain"] == "2"
    # Stored locally despite Redis being down; one warning per outage, not per cell.
    again = k.run("%%cached two\nprint('still runs')\nb = 2").check()
    assert k.run(STATUS).check().result["text/plain"] == "('hit', 'disk')"
    assert "Redis" not in again.stderr
    k.run("%%cached one\na = 1").check()
    assert k.run(STATUS).check().result["text/plain"] == "('hit', 'disk')"


def test_backend_redis_without_url_is_a_usage_error(kernel):
    res = kernel.run("%%cached --backend redis\nx = 1")
    assert res.error is not None and "cache.redis_url" in (res.stderr + res.error["evalue"])
