"""Health checks: a registry, a decorator and the built-in checks (docs/observability.md).

A check is a function (sync or async) registered with :func:`health_check`; it
returns ``None``/``True`` (ok), ``False`` (failing), a status string
(``"ok"``, ``"degraded"``, ``"failing"``), a ``(status, detail)`` pair or a dict with
``status`` and ``detail``.  :func:`run_health_checks` runs every check in its own
daemon thread, in parallel, with a timeout: a check that raises is failing with the
reason, one that hangs is failing with "timed out" (and is not started again while it
still hangs).  The overall status is the worst of the checks.

Built-ins: ``cache_dir`` (writable), ``disk`` (free space of ``core.state_dir``),
``memory``, ``cpu``, ``vault`` (readable when it exists) and ``redis`` (reachable;
only when a Redis URL is configured).
"""

from __future__ import annotations

import html
import inspect
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..events import Listeners, channel

__all__ = [
    "STATUSES",
    "CheckResult",
    "HealthReport",
    "health_check",
    "last_report",
    "on_health_report",
    "registered_checks",
    "run_health_checks",
    "unregister_check",
]

STATUSES = ("ok", "degraded", "failing")
_RANK = {s: i for i, s in enumerate(STATUSES)}
DEFAULT_TIMEOUT = 5.0

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CheckResult:
    """What one check found."""

    name: str
    status: str
    detail: str
    duration_ms: float
    since: float

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``/sci/health`` and ``/sci/api/status`` checks."""
        return asdict(self)


@dataclass(frozen=True)
class HealthReport:
    """Every check's result and the worst status; shows as a table in IPython."""

    status: str
    checks: list[CheckResult] = field(default_factory=list)
    time: float = 0.0

    @property
    def failing(self) -> list[CheckResult]:
        """The checks that fail."""
        return [c for c in self.checks if c.status == "failing"]

    def as_dict(self) -> dict[str, Any]:
        """``{"status", "checks": [...], "time"}``."""
        return {"status": self.status, "checks": [c.as_dict() for c in self.checks], "time": self.time}

    def __str__(self) -> str:
        rows = [("check", "status", "ms", "detail")] + [
            (c.name, c.status, f"{c.duration_ms:.1f}", c.detail) for c in self.checks
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"sci_ext health: {self.status}"]
        for r in rows:
            lines.append(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        colours = {"ok": "#1a7f37", "degraded": "#9a6700", "failing": "#cf222e"}

        def badge(status: str) -> str:
            return f'<span style="color:{colours.get(status, "inherit")};font-weight:bold">{html.escape(status)}</span>'

        rows = "".join(
            f"<tr><td>{html.escape(c.name)}</td><td>{badge(c.status)}</td>"
            f"<td style='text-align:right'>{c.duration_ms:.1f}</td><td>{html.escape(c.detail)}</td></tr>"
            for c in self.checks
        )
        return (
            f"<div class='sci-health'><b>sci_ext health: {badge(self.status)}</b>"
            "<table><thead><tr><th>check</th><th>status</th><th>ms</th><th>detail</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>"
        )


@dataclass
class _Check:
    name: str
    func: Callable[..., Any]
    timeout: float | None
    builtin: bool = False


_registry: dict[str, _Check] = {}
_registry_lock = threading.Lock()
_since: dict[str, tuple[str, float]] = {}
_hanging: dict[str, float] = {}  # check name -> when the still-running call started

#: Every :func:`run_health_checks` report (metrics and alerts listen here).
# A named channel: telemetry subscribes at %load_ext without importing this module.
on_health_report: Listeners[HealthReport] = channel("health report")


def health_check(name: str | Callable[..., Any] | None = None, *, timeout: float | None = None) -> Any:
    """Register a health check: ``@health_check("db")``, ``@health_check`` or ``health_check("db")(func)``.

    The function is returned unchanged.  ``timeout`` (seconds) overrides
    ``monitoring.check_timeout_seconds`` for this check.  A later registration under
    the same name replaces the earlier one.
    """
    if callable(name):  # bare @health_check
        func = name
        _register(func.__name__, func, timeout)
        return func
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"health_check: name must be a non-empty string, got {name!r}")

    def decorator(func: F) -> F:
        if not callable(func):
            raise TypeError(f"health_check({name!r}): expected a function, got {type(func).__name__}")
        _register(name or func.__name__, func, timeout)
        return func

    return decorator


def _register(name: str, func: Callable[..., Any], timeout: float | None, builtin: bool = False) -> None:
    if timeout is not None and not timeout > 0:
        raise ValueError(f"health_check({name!r}): timeout must be > 0 seconds, got {timeout!r}")
    with _registry_lock:
        _registry[name] = _Check(name, func, timeout, builtin)


def unregister_check(name: str) -> None:
    """Remove the check ``name`` (no error if absent)."""
    with _registry_lock:
        _registry.pop(name, None)
    _since.pop(name, None)


def registered_checks() -> list[str]:
    """Names of every registered check (built-ins first)."""
    _ensure_builtins()
    with _registry_lock:
        return list(_registry)


def _interpret(value: Any) -> tuple[str, str]:
    if value is None or value is True:
        return "ok", "ok"
    if value is False:
        return "failing", "check returned False"
    if isinstance(value, str):
        return (value, value) if value in _RANK else ("ok", value)
    if isinstance(value, tuple) and len(value) == 2:
        status, detail = value
    elif isinstance(value, dict):
        status, detail = value.get("status"), value.get("detail", "")
    else:
        return "failing", f"check returned {type(value).__name__}, not a status"
    if status not in _RANK:
        return "failing", f"check returned the unknown status {status!r}"
    return str(status), str(detail)


def _call(func: Callable[..., Any]) -> Any:
    result = func()
    if inspect.isawaitable(result):
        import asyncio

        async def wait() -> Any:
            return await result

        result = asyncio.run(wait())
    return result


def _default_timeout() -> float:
    try:
        from ..config import get_config

        return float(get_config().monitoring.check_timeout_seconds)
    except Exception:
        return DEFAULT_TIMEOUT


def run_health_checks(names: list[str] | None = None, *, timeout: float | None = None) -> HealthReport:
    """Run the checks (all, or ``names``) in parallel and return a :class:`HealthReport`.

    ``timeout`` bounds each check (default: the check's own, else
    ``monitoring.check_timeout_seconds``).  Never raises for a failing check.
    """
    _ensure_builtins()
    with _registry_lock:
        if names is None:
            checks = [c for c in _registry.values() if not c.builtin or applicable(c.name)]
        else:
            unknown = [n for n in names if n not in _registry]
            if unknown:
                raise ValueError(f"unknown health check(s): {', '.join(unknown)} (known: {', '.join(_registry)})")
            checks = [_registry[n] for n in names]
    default = _default_timeout() if timeout is None else timeout
    results: dict[str, tuple[str, str, float]] = {}
    threads: list[tuple[_Check, threading.Thread, float, float]] = []
    for check in checks:
        if check.name in _hanging:
            started = _hanging[check.name]
            results[check.name] = ("failing", f"still running since {time.time() - started:.0f} s ago (hangs)", 0.0)
            continue

        def target(check: _Check = check) -> None:
            t0 = time.perf_counter()
            try:
                status, detail = _interpret(_call(check.func))
            except Exception as exc:
                status, detail = "failing", f"{type(exc).__name__}: {exc}"[:300]
            results[check.name] = (status, detail, (time.perf_counter() - t0) * 1000)
            _hanging.pop(check.name, None)

        thread = threading.Thread(target=target, name=f"sci_ext-health-{check.name}", daemon=True)
        limit = check.timeout if check.timeout is not None and timeout is None else default
        threads.append((check, thread, time.perf_counter(), limit))
        thread.start()
    for check, thread, started, limit in threads:
        thread.join(max(0.0, started + limit - time.perf_counter()))
        if thread.is_alive() and check.name not in results:
            _hanging[check.name] = time.time() - (time.perf_counter() - started)
            results[check.name] = ("failing", f"timed out after {limit:g} s", limit * 1000)
    now = time.time()
    out: list[CheckResult] = []
    for check in checks:
        status, detail, ms = results[check.name]
        previous = _since.get(check.name)
        if previous is None or previous[0] != status:
            _since[check.name] = (status, now)
        out.append(CheckResult(check.name, status, detail, round(ms, 3), _since[check.name][1]))
    overall = max((c.status for c in out), key=_RANK.__getitem__, default="ok")
    report = HealthReport(overall, out, now)
    global _last_report
    _last_report = report
    on_health_report.emit(report)
    return report


_last_report: HealthReport | None = None


def last_report() -> HealthReport | None:
    """The report of the latest :func:`run_health_checks` in this process (``None`` before the first)."""
    return _last_report


# ---------------------------------------------------------------- built-ins
def _cfg() -> Any:
    from ..config import get_config

    return get_config()


def check_cache_dir() -> tuple[str, str]:
    """``cache.dir`` exists (or can be created) and a file can be written there."""
    from ..trust import create_private_file, ensure_private_dir

    directory = ensure_private_dir(_cfg().cache.dir, what="cache.dir")  # 0700, owner checked (review R4)
    probe = directory / f".sci-health-{os.getpid()}-{secrets.token_hex(4)}"
    fd = create_private_file(probe, what="cache.dir probe")
    try:
        os.write(fd, b"ok")
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)
    return "ok", f"writable ({directory})"


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_private_dirs() -> tuple[str, str]:
    """The long-lived private directories (metrics, LLM history, state store) are still the ones made.

    Review 2026-12-b R4: owner, mode and inode re-checked (``lstat``) on every health run,
    so a directory another user swapped makes health failing with the reason.
    """
    from ..trust import pinned_problems

    count, problems = pinned_problems()
    if problems:
        return "failing", "; ".join(problems)
    return "ok", f"{count} director{'y' if count == 1 else 'ies'} unchanged"


def check_disk() -> tuple[str, str]:
    """Free space of the filesystem holding ``core.state_dir``."""
    cfg = _cfg()
    usage = shutil.disk_usage(_existing_parent(Path(cfg.core.state_dir).expanduser()))
    minimum = int(cfg.monitoring.min_free_disk_bytes)
    detail = f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB"
    if usage.free < minimum / 8:
        return "failing", detail + f" (< 1/8 of monitoring.min_free_disk_bytes={minimum})"
    if usage.free < minimum:
        return "degraded", detail + f" (< monitoring.min_free_disk_bytes={minimum})"
    return "ok", detail


def check_memory() -> tuple[str, str]:
    """Memory in use (the cgroup's limit when there is one) against ``monitoring.memory_threshold_percent``."""
    from .resources import memory_info

    mem = memory_info()
    threshold = float(_cfg().monitoring.memory_threshold_percent)
    detail = f"{mem['percent']:.1f} % used ({mem['limit_source']})"
    if mem["percent"] >= max(threshold, 98.0):
        return "failing", detail
    if mem["percent"] >= threshold:
        return "degraded", detail + f" (>= {threshold:g} %)"
    return "ok", detail


def check_cpu() -> tuple[str, str]:
    """CPU use over the last sampling window: information only, never degraded.

    A machine that computes is doing its job; CPU shows in the check's detail and the
    resources block, and no alert or health status follows from it (SPEC section 6).
    """
    from .resources import cpu_count, cpu_percent

    return "ok", f"{cpu_percent():.1f} % of {cpu_count()} core(s)"


def check_vault() -> tuple[str, str]:
    """The vault file, when it exists, is readable JSON."""
    path = Path(_cfg().security.vault_path).expanduser()
    if not path.exists():
        return "ok", "no vault yet"
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        return "failing", f"{path} is not a vault (JSON object expected)"
    return "ok", f"readable ({path.name})"


def _redis_urls() -> list[str]:
    cfg = _cfg()
    urls = [cfg.cache.redis_url, getattr(cfg.breaker, "redis_url", None)]
    return list(dict.fromkeys(u for u in urls if u))


def check_redis() -> tuple[str, str]:
    """Every configured Redis server answers PING."""
    import redis

    from ..security.redact import get_redactor

    urls = _redis_urls()
    if not urls:
        return "ok", "not configured"
    for url in urls:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    from urllib.parse import urlsplit

    hosts = ", ".join(f"{urlsplit(u).hostname}:{urlsplit(u).port or 6379}" for u in urls)
    return "ok", get_redactor().redact(f"PING answered ({hosts})")


def _redis_configured() -> bool:
    try:
        return bool(_redis_urls())
    except Exception:
        return False


_builtins_done = False


def _ensure_builtins() -> None:
    global _builtins_done
    if _builtins_done:
        return
    _builtins_done = True
    for name, func in (
        ("cache_dir", check_cache_dir),
        ("disk", check_disk),
        ("memory", check_memory),
        ("cpu", check_cpu),
        ("vault", check_vault),
        ("private_dirs", check_private_dirs),
    ):
        with _registry_lock:
            _registry.setdefault(name, _Check(name, func, None, builtin=True))

    def redis_when_configured() -> tuple[str, str]:
        return check_redis()

    with _registry_lock:
        _registry.setdefault("redis", _Check("redis", redis_when_configured, None, builtin=True))


def applicable(name: str) -> bool:
    """False for a built-in that does not apply here (``redis`` without a Redis URL)."""
    return name != "redis" or _redis_configured()
