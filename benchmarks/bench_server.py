"""Server extension: concurrent /sci/metrics and /sci/health vs jupyter_server's own /metrics; scrape time vs kernels.

Starts a real ``jupyter server`` (sci_ext enabled) on a free loopback port with
isolated directories, then:

1. sends N requests (default 1000) with at most C in flight (default 100) from an
   asyncio client (httpx) to ``/metrics`` (jupyter_server's own, the peer),
   ``/sci/metrics`` and ``/sci/health``, all with the Jupyter token, each in the same
   run: errors, p50/p99 latency, throughput, and throughput ratios against ``/metrics``;
2. fills the multiprocess directory with K kernels' worth of metrics files (the
   metrics a kernel records: cells, cache, errors, retries, breakers, health gauges;
   written under the pids of K live placeholder processes), times ``/sci/metrics``;
   then adds K dead ones and times it again right away (before compaction) and after
   the server's background compaction folded them into the archives.

Figures are printed, never asserted.  ``--quick`` for the smoke test.  Run with
bytecode caches (unset PYTHONDONTWRITEBYTECODE) for real figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from sizes import add_size_options

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

WRITER = textwrap.dedent(
    """
    import sys
    from prometheus_client import CollectorRegistry, values
    ident = {"pid": int(sys.argv[1])}  # metrics are created under the first placeholder pid
    values.ValueClass = values.MultiProcessValue(lambda: ident["pid"])
    from sci_ext.core.telemetry.metrics import SciMetrics
    m = SciMetrics(registry=CollectorRegistry())
    for pid in map(int, sys.argv[1:]):
        ident["pid"] = pid
        for i in range(40):
            m.cell_duration.observe(0.001 * (i % 17))
        m.cell_errors.inc()
        for layer in ("memory", "disk"):
            for result in ("hit", "miss", "store"):
                m.cache_requests.labels(layer, result).inc(3)
        m.retry_attempts.labels("openai", "HTTPError").inc(2)
        m.errors.labels("transient").inc()
        m.breaker_state.labels("openai").set(0)
        for check in ("cache_dir", "disk", "memory", "cpu", "vault"):
            m.health_status.labels(check).set(0)
        m.cache_size.set(12345)
        m.cpu_percent.set(12.5)
        m.memory_percent.set(40.0)
    """
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _load(base: str, path: str, headers: dict[str, str], total: int, concurrency: int) -> dict[str, float]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:
        await client.get(path)  # warm-up (connection, first sample)

        async def one() -> None:
            nonlocal errors
            async with semaphore:
                t0 = time.perf_counter()
                try:
                    response = await client.get(path)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        wall = time.perf_counter() - started
    return {
        "errors": errors,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
        "rps": total / wall,
    }


def _scrape_times(server, repeat: int) -> tuple[float, float, float, int]:
    """Median and max wall ms of ``GET /sci/metrics``, the server's CPU ms per scrape, bytes."""
    import psutil

    proc = psutil.Process(server.proc.pid)
    times = []
    size = 0
    cpu0 = sum(proc.cpu_times()[:2])
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = server.get("/sci/metrics")
        times.append(time.perf_counter() - t0)
        assert result.status == 200, result.text
        size = len(result.body)
    cpu_ms = 1000 * (sum(proc.cpu_times()[:2]) - cpu0) / repeat
    return 1000 * statistics.median(times), 1000 * max(times), cpu_ms, size


def _collect_cpu_ms(directory: Path, repeat: int) -> float:
    """CPU ms of one in-process read of ``directory`` by the extension's collector."""
    from prometheus_client import CollectorRegistry, generate_latest

    from sci_ext.server.multiproc import CombinedCollector, MetricsDir

    md = MetricsDir(directory)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CombinedCollector([], md))
    generate_latest(registry)
    t0 = time.process_time()
    for _ in range(repeat):
        generate_latest(registry)
    return 1000 * (time.process_time() - t0) / repeat


def _write_kernels(directory: Path, pids: list[int], env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-c", WRITER, *map(str, pids)],
        env={**env, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--kernels", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=30, help="scrapes per scrape-time figure")
    add_size_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.concurrency, args.kernels, args.repeat = 60, 20, 4, 5
    if args.smoke:  # five scrapes still: the server's CPU per scrape is read in 10 ms ticks
        args.requests, args.concurrency, args.kernels, args.repeat = 4, 2, 1, 5

    from live_server import LiveServer

    scratch = Path(tempfile.mkdtemp(prefix="sci_ext-bench-server-"))
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        path = scratch / var.lower()
        path.mkdir(mode=0o700)
        env[var] = str(path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    server = LiveServer(scratch / "jupyter", env=env, sci_options={"sampling_interval": 1.0}).start()
    placeholders: list[subprocess.Popen[bytes]] = []
    try:
        print(
            f"jupyter server on 127.0.0.1:{server.port}; {args.requests} requests, at most {args.concurrency} in flight"
        )
        results = {}
        for path in ("/metrics", "/sci/metrics", "/sci/health"):
            r = asyncio.run(_load(server.base, path, server.auth, args.requests, args.concurrency))
            results[path] = r
            label = f"{path} (jupyter_server, peer)" if path == "/metrics" else path
            print(
                f"{label}: errors {r['errors']}, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"{r['rps']:.0f} req/s"
            )
        for path in ("/sci/metrics", "/sci/health"):
            print(f"ratio {path} vs /metrics throughput = {results[path]['rps'] / results['/metrics']['rps']:.2f}")

        metrics_dir = Path(env["XDG_STATE_HOME"]) / "sci_ext" / "prometheus"
        base_ms, _, base_cpu, base_size = _scrape_times(server, args.repeat)
        print(
            f"scrape /sci/metrics, no kernel files: median {base_ms:.1f} ms, server CPU {base_cpu:.1f} ms/scrape "
            f"({base_size} bytes)"
        )
        placeholders = [subprocess.Popen(["sleep", "3600"]) for _ in range(args.kernels)]
        live_pids = [p.pid for p in placeholders]
        _write_kernels(metrics_dir, live_pids, env)
        files_live = len(list(metrics_dir.glob("*.db")))
        live_ms, live_max, live_cpu, live_size = _scrape_times(server, args.repeat)
        print(
            f"scrape /sci/metrics, {args.kernels} live kernels ({files_live} files): median {live_ms:.1f} ms, "
            f"max {live_max:.1f} ms, server CPU {live_cpu:.1f} ms/scrape ({live_size} bytes)"
        )
        dead = [subprocess.Popen(["true"]) for _ in range(args.kernels)]
        for p in dead:
            p.wait()
        dead_pids = [p.pid for p in dead]
        _write_kernels(metrics_dir, dead_pids, env)
        deadline = time.monotonic() + 60
        dead_suffixes = tuple(f"_{pid}.db" for pid in dead_pids)
        while time.monotonic() < deadline and any(n.endswith(dead_suffixes) for n in os.listdir(metrics_dir)):
            time.sleep(0.2)  # the server's background compaction removes them all, then they are gone
        files_after = len(list(metrics_dir.glob("*.db")))
        after_ms, after_max, after_cpu, _ = _scrape_times(server, args.repeat)
        print(
            f"scrape /sci/metrics, {args.kernels} live + {args.kernels} dead after the server's compaction "
            f"({files_after} files): median {after_ms:.1f} ms, max {after_max:.1f} ms, server CPU {after_cpu:.1f} ms/scrape"
        )
        print(f"ratio scrape server CPU dead-compacted vs live only = {after_cpu / live_cpu:.2f}")

        # The same files read in-process (no HTTP), before and after compaction.
        from sci_ext.server.multiproc import MetricsDir

        side = scratch / "side"
        side.mkdir()
        _write_kernels(side, live_pids, env)
        live_only = _collect_cpu_ms(side, args.repeat)
        _write_kernels(side, dead_pids, env)
        uncompacted = _collect_cpu_ms(side, args.repeat)
        MetricsDir(side).compact()
        compacted = _collect_cpu_ms(side, args.repeat)
        print(
            f"collector CPU in-process: {args.kernels} live {live_only:.1f} ms, + {args.kernels} dead uncompacted "
            f"{uncompacted:.1f} ms, compacted {compacted:.1f} ms"
        )
        print(f"ratio collector CPU dead-compacted vs live only = {compacted / live_only:.2f}")
    finally:
        for p in placeholders:
            p.kill()
            p.wait()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
