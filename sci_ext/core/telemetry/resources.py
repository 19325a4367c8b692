"""What the machine (or the container) has and uses: CPU, memory, disk, GPUs.

The one resource sampler of a process, for every reader: the status API (kernel and
server), the panel, ``%sci_dashboard``, the ``cpu`` health check and the metrics gauges.

CPU is a rate, so it needs two samples and a window between them.  Reading
``psutil.cpu_percent(interval=None)`` from whichever thread asks gives each thread its
own baseline (psutil keeps it per thread) and windows of any length, down to a few
milliseconds: readings then flip between 0 % and 100 % on an idle machine.  Here ONE
daemon thread (started on first use) takes a sample every :data:`CPU_WINDOW` seconds
and every reader gets the figure of the last complete window.

Limits come from the process's cgroup when it sets one below what the host has (a
container): cgroup v2 ``cpu.max`` / ``cpu.stat`` and ``memory.max`` / ``memory.current``,
cgroup v1 ``cpu/cpu.cfs_quota_us`` / ``cpuacct/cpuacct.usage`` and
``memory/memory.limit_in_bytes`` / ``memory/memory.usage_in_bytes``.  GPUs are read
through NVML (``nvidia-ml-py``'s ``pynvml``) only when an NVIDIA device is present.
``psutil`` is imported on first use; everything here is blocking I/O (call it off the
event loop).
"""

from __future__ import annotations

import glob
import logging
import math
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CPU_WINDOW",
    "CpuSampler",
    "cgroup_cpu_limit",
    "cgroup_memory",
    "cpu_count",
    "cpu_percent",
    "cpu_sampler",
    "disk_info",
    "gpu_info",
    "gpu_present",
    "memory_info",
    "resources",
]

log = logging.getLogger("sci_ext.telemetry")

CGROUP_ROOT = Path("/sys/fs/cgroup")
_CGROUP = CGROUP_ROOT  # the root every reader uses (tests point it at a fake tree)
_NO_LIMIT = 2**60  # cgroup v1 reports "no limit" as a huge page-aligned number
CPU_WINDOW = 1.0  # seconds between CPU samples: what jupyter-resource-usage's status bar shows too
_FIRST_WINDOW = 0.25  # the first figure comes sooner, so the first reader waits little


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    if text is None or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


# --------------------------------------------------------------------- cgroups
def cgroup_cpu_limit(root: Path | None = None) -> float | None:
    """Cores the cgroup may use (``quota / period``), or ``None`` without a CPU limit."""
    root = _CGROUP if root is None else root
    text = _read_text(root / "cpu.max")  # v2: "max 100000" or "150000 100000"
    if text:
        parts = text.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                quota, period = int(parts[0]), int(parts[1])
            except ValueError:
                return None
            return quota / period if quota > 0 and period > 0 else None
        return None
    v1_quota = _read_int(root / "cpu" / "cpu.cfs_quota_us")  # v1: -1 means no limit
    v1_period = _read_int(root / "cpu" / "cpu.cfs_period_us")
    if v1_quota is not None and v1_period and v1_quota > 0:
        return v1_quota / v1_period
    return None


def _cgroup_cpu_usage_seconds(root: Path) -> float | None:
    """CPU seconds the cgroup used so far (v2 ``cpu.stat`` usage_usec, v1 ``cpuacct.usage`` ns)."""
    text = _read_text(root / "cpu.stat")
    if text:
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec" and value.strip().isdigit():
                return int(value) / 1e6
    for rel in ("cpuacct/cpuacct.usage", "cpu,cpuacct/cpuacct.usage", "cpu/cpuacct.usage"):
        ns = _read_int(root / rel)
        if ns is not None:
            return ns / 1e9
    return None


def cgroup_memory(root: Path | None = None) -> tuple[int, int] | None:
    """``(used, limit)`` bytes of this process's memory cgroup, or ``None`` without a limit."""
    root = _CGROUP if root is None else root
    for limit_file, used_file in (
        (root / "memory.max", root / "memory.current"),
        (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_file)
        if limit is None or limit >= _NO_LIMIT:
            continue
        used = _read_int(used_file)
        if used is None:
            continue
        return used, limit
    return None


# ------------------------------------------------------------------------- CPU
@dataclass(frozen=True)
class _Sample:
    wall: float  # time.monotonic()
    busy: float  # CPU seconds used (all cores of the host, or the cgroup)
    total: float  # CPU seconds available (host: all cores' time; cgroup: wall x cores allowed)


class CpuSampler:
    """One thread samples CPU use every ``window`` seconds; :meth:`percent` returns the latest figure.

    The figure is the share (0-100) of the CPU this process may use that was busy during
    the last complete window: all of the host's cores, or the cgroup's quota when it
    sets one below the host's core count.
    """

    def __init__(self, window: float = CPU_WINDOW, root: Path | None = None) -> None:
        self.window = window
        self.root = root
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._percent = 0.0
        self.samples = 0  # windows measured so far (tests read it)
        self.thread_ident: int | None = None  # the one thread that samples

    # The source of a sample is decided each time: a cgroup limit may be set later.
    def _limit(self) -> float | None:
        limit = cgroup_cpu_limit(self.root)
        host = float(os.cpu_count() or 1)
        return limit if limit is not None and limit < host else None

    def _sample(self) -> _Sample:
        now = time.monotonic()
        limit = self._limit()
        if limit is not None:
            used = _cgroup_cpu_usage_seconds(_CGROUP if self.root is None else self.root)
            if used is not None:
                return _Sample(now, used, now * limit)
        import psutil

        t = psutil.cpu_times()
        idle = float(t.idle) + float(getattr(t, "iowait", 0.0))
        total = float(sum(t))
        # guest time is already counted in user on Linux: leave it out of the total once
        total -= float(getattr(t, "guest", 0.0)) + float(getattr(t, "guest_nice", 0.0))
        return _Sample(now, total - idle, total)

    @staticmethod
    def _rate(old: _Sample, new: _Sample) -> float | None:
        total = new.total - old.total
        if total <= 0 or (new.total < old.total) or (new.busy < old.busy):
            return None  # a counter reset or a switch of source: wait for the next window
        return max(0.0, min(100.0, 100.0 * (new.busy - old.busy) / total))

    def _run(self) -> None:
        self.thread_ident = threading.get_ident()
        previous = self._sample()
        wait = min(_FIRST_WINDOW, self.window)
        while not self._stop.wait(wait):
            wait = self.window
            try:
                current = self._sample()
            except Exception as exc:  # /proc unreadable: keep the last figure, say so once
                if self.samples == 0:
                    log.debug("sci_ext: CPU sampling failed: %s", exc)
                continue
            rate = self._rate(previous, current)
            previous = current
            if rate is None:
                continue
            with self._lock:
                self._percent = rate
                self.samples += 1
            self._ready.set()

    def start(self) -> None:
        """Start the sampling thread (idempotent; a daemon, so it never holds up exit)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sci_ext-cpu-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (the last figure stays readable)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.window + 1)

    def percent(self, wait: float | None = None) -> float:
        """The CPU use of the last complete window; the first call waits for the first window."""
        self.start()
        self._ready.wait(min(_FIRST_WINDOW, self.window) + 0.5 if wait is None else wait)
        with self._lock:
            return round(self._percent, 1)


_sampler: CpuSampler | None = None
_sampler_lock = threading.Lock()


def cpu_sampler() -> CpuSampler:
    """The process's one CPU sampler (created and started on first use)."""
    global _sampler
    with _sampler_lock:
        if _sampler is None:
            _sampler = CpuSampler()
        _sampler.start()
        return _sampler


def cpu_percent() -> float:
    """CPU use (0-100) of the host or the container, over the last :data:`CPU_WINDOW` seconds."""
    return cpu_sampler().percent()


def cpu_count() -> int:
    """Cores this process may use: the cgroup's quota (rounded up) when lower than the host's cores."""
    host = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return max(1, math.ceil(limit)) if limit is not None and limit < host else host


# ---------------------------------------------------------------------- memory
def memory_info(root: Path | None = None) -> dict[str, Any]:
    """``{"used_bytes", "total_bytes", "percent", "limit_source": "cgroup"|"host"}``.

    The cgroup's when it sets a limit below the host's memory, else the host's.
    """
    import psutil

    host = psutil.virtual_memory()
    cg = cgroup_memory(root)
    if cg is not None and cg[1] < host.total:
        used, total = cg
        source = "cgroup"
    else:
        used, total = host.total - host.available, host.total
        source = "host"
    return {
        "used_bytes": int(used),
        "total_bytes": int(total),
        "percent": round(100.0 * used / total, 1) if total else 0.0,
        "limit_source": source,
    }


# ------------------------------------------------------------------------ disk
def disk_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Free and total bytes of the file system holding ``path`` (its nearest existing parent)."""
    p = Path(path).expanduser()
    while not p.exists() and p != p.parent:
        p = p.parent
    usage = shutil.disk_usage(p)
    percent = round(100.0 * usage.used / usage.total, 1) if usage.total else 0.0
    return {"path": str(Path(path).expanduser()), "free_bytes": usage.free, "total_bytes": usage.total,
            "percent": percent}  # fmt: skip


# ------------------------------------------------------------------------ GPUs
def gpu_present() -> bool:
    """True when an NVIDIA device node or driver entry exists (no library is loaded to find out)."""
    return bool(glob.glob("/dev/nvidia[0-9]*") or glob.glob("/proc/driver/nvidia/gpus/*"))


def gpu_info() -> list[dict[str, Any]]:
    """One dict per NVIDIA GPU through NVML; ``[]`` without a device, ``nvidia-ml-py`` or a driver."""
    if not gpu_present():
        return []
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # driver mismatch, no permission
        log.debug("sci_ext: NVML unavailable: %s", exc)
        return []
    out: list[dict[str, Any]] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                temp: int | None = int(pynvml.nvmlDeviceGetTemperature(handle, 0))  # 0: NVML_TEMPERATURE_GPU
            except Exception:
                temp = None
            out.append({
                "index": index,
                "name": name.decode() if isinstance(name, bytes) else str(name),
                "utilization_percent": float(util.gpu),
                "memory_used_bytes": int(mem.used),
                "memory_total_bytes": int(mem.total),
                "temperature_c": temp,
            })  # fmt: skip
    except Exception as exc:
        log.debug("sci_ext: reading GPUs failed: %s", exc)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception as exc:
            log.debug("sci_ext: nvmlShutdown failed: %s", exc)
    return out


def resources(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``resources`` block of the status API (the same in a kernel and in the server)."""
    out: dict[str, Any] = {
        "cpu_percent": cpu_percent(),
        "cpu_count": cpu_count(),
        "memory": memory_info(),
        "gpus": gpu_info(),
    }
    try:
        out["disk"] = disk_info(state_dir)
    except OSError as exc:
        out["disk"] = {"path": str(state_dir), "error": str(exc)}
    return out
