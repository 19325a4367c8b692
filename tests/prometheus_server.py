"""A real Prometheus (Debian's ``prometheus``) scraping sci_ext servers with bearer API keys.

Used by the Grafana-dashboard and scale-out tests: start it with a list of targets,
wait until every target is up, run PromQL, stop it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

from live_server import free_port, http


class PrometheusServer:
    """``prometheus`` on a free loopback port; ``targets`` are ``(host:port, bearer token)``."""

    def __init__(self, workdir: Path, targets: list[tuple[str, str]], interval: str = "1s") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api/v1"
        jobs = []
        for n, (address, token) in enumerate(targets):
            jobs.append(
                f"""  - job_name: sci_ext_{n}
    metrics_path: /sci/metrics
    authorization:
      type: Bearer
      credentials: {token}
    static_configs:
      - targets: ["{address}"]
        labels:
          server: "s{n}"
"""
            )
        self.config = workdir / "prometheus.yml"
        self.config.write_text(
            f"global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\nscrape_configs:\n" + "".join(jobs)
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        """Check the config with promtool, then start the server."""
        check = subprocess.run(
            ["promtool", "check", "config", str(self.config)], capture_output=True, text=True, timeout=60
        )
        assert check.returncode == 0, check.stdout + check.stderr
        self._log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        return self

    def wait_up(self, count: int, timeout: float = 90) -> list[dict[str, Any]]:
        """Wait until ``count`` targets report ``up``."""
        deadline = time.monotonic() + timeout
        targets: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                targets = http(self.api + "/targets").json()["data"]["activeTargets"]
            except Exception:
                targets = []
            up = [t for t in targets if t["health"] == "up"]
            if len(up) >= count:
                return up
            time.sleep(0.5)
        raise AssertionError(f"targets not up in {timeout} s: {[(t['scrapeUrl'], t['lastError']) for t in targets]}")

    def query(self, promql: str) -> dict[str, Any]:
        """An instant query; returns Prometheus's ``data`` (raises with its error for bad PromQL)."""
        result = http(f"{self.api}/query?query={urllib.parse.quote(promql)}").json()
        if result.get("status") != "success":
            raise AssertionError(f"{promql}: {result.get('errorType')}: {result.get('error')}")
        return dict(result["data"])

    def wait_for(self, promql: str, predicate: Any, timeout: float = 60) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``predicate(result_list)`` is true; returns the result list."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(promql)["result"]
            if predicate(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{promql}: last result {result}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "_log", None) is not None:
            self._log.close()
