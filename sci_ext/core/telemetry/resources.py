"""What the machine has and uses: CPU, memory (cgroup-aware), disk, GPUs.

``psutil`` is imported on first use.  Memory is the cgroup v2 limit and usage when the
process runs under a limit lower than the host's memory (containers), else the host's.
GPUs come from NVML (``nvidia-ml-py``) when it is installed and a driver answers, else ``[]``.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

__all__ = ["cpu_percent", "disk_info", "gpu_info", "memory_info", "resources"]

_CGROUP = Path("/sys/fs/cgroup")
_cpu_lock = threading.Lock()
_cpu_primed = False


def cpu_percent() -> float:
    """CPU use of the machine (0-100, all cores) since the previous call (the first call samples 0.1 s)."""
    global _cpu_primed
    import psutil

    with _cpu_lock:
        if not _cpu_primed:
            _cpu_primed = True
            return float(psutil.cpu_percent(interval=0.1))
        return float(psutil.cpu_percent(interval=None))


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def memory_info() -> dict[str, Any]:
    """``{"used_bytes", "total_bytes", "percent", "limit_source": "cgroup"|"host"}``."""
    import psutil

    vm = psutil.virtual_memory()
    limit = _read_int(_CGROUP / "memory.max")
    current = _read_int(_CGROUP / "memory.current")
    if limit and current is not None and limit < vm.total:
        return {"used_bytes": current, "total_bytes": limit, "percent": round(100.0 * current / limit, 1),
                "limit_source": "cgroup"}  # fmt: skip
    used = vm.total - vm.available
    return {"used_bytes": used, "total_bytes": vm.total, "percent": round(float(vm.percent), 1), "limit_source": "host"}


def disk_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Free and total bytes of the filesystem holding ``path`` (its nearest existing parent)."""
    p = Path(path).expanduser()
    while not p.exists() and p != p.parent:
        p = p.parent
    usage = shutil.disk_usage(p)
    percent = round(100.0 * usage.used / usage.total, 1) if usage.total else 0.0
    return {"path": str(Path(path).expanduser()), "free_bytes": usage.free, "total_bytes": usage.total,
            "percent": percent}  # fmt: skip


def gpu_info() -> list[dict[str, Any]]:
    """One dict per NVIDIA GPU; ``[]`` without ``nvidia-ml-py`` or a driver."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:
        return []
    out = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            temp = pynvml.nvmlDeviceGetTemperature(handle, 0)
            out.append({
                "index": index,
                "name": name.decode() if isinstance(name, bytes) else str(name),
                "utilization_percent": float(util.gpu),
                "memory_used_bytes": int(mem.used),
                "memory_total_bytes": int(mem.total),
                "temperature_c": int(temp),
            })  # fmt: skip
    except Exception:
        return out
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: S110  # nosec B110  # shutting NVML down is best effort
            pass
    return out


def resources(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``resources`` block of the status API."""
    return {
        "cpu_percent": round(cpu_percent(), 1),
        "cpu_count": os.cpu_count() or 1,
        "memory": memory_info(),
        "disk": disk_info(state_dir),
        "gpus": gpu_info(),
    }
