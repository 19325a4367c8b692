"""Machine resources for ``/sci/api/status``: CPU, memory (cgroup-aware), disk, GPUs.

Everything here does blocking I/O: call it from the sampler's executor, never on
the event loop (jupyter-resource-usage's polling on the loop was its issue #123).
GPUs are read through nvidia-ml-py (``pynvml``) only when an NVIDIA device is
present; without one, or without the package, ``gpus`` is ``[]``.
"""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["cgroup_memory", "disk", "gpu_present", "gpus", "memory", "sample_resources"]

log = logging.getLogger("sci_ext.server")

CGROUP_ROOT = Path("/sys/fs/cgroup")
_NO_LIMIT = 2**60  # cgroup v1 reports "no limit" as a huge page-aligned number


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def cgroup_memory(root: Path = CGROUP_ROOT) -> tuple[int, int] | None:
    """``(used, limit)`` bytes of this process's memory cgroup, or ``None`` without a limit.

    cgroup v2: ``memory.max`` / ``memory.current``; v1: ``memory/memory.limit_in_bytes``
    / ``memory/memory.usage_in_bytes``.
    """
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


def memory(root: Path = CGROUP_ROOT) -> dict[str, Any]:
    """Memory in use: the cgroup's when it sets a limit below the host's memory, else the host's."""
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


def disk(path: Path | str) -> dict[str, Any]:
    """Free and total bytes of the file system holding ``path`` (its nearest existing parent)."""
    import psutil

    probe = Path(path).expanduser()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    usage = psutil.disk_usage(str(probe))
    return {
        "path": str(path),
        "free_bytes": int(usage.free),
        "total_bytes": int(usage.total),
        "percent": float(usage.percent),
    }


def gpu_present() -> bool:
    """True when an NVIDIA device node or driver entry exists (no library is loaded to find out)."""
    return bool(glob.glob("/dev/nvidia[0-9]*") or glob.glob("/proc/driver/nvidia/gpus/*"))


def gpus() -> list[dict[str, Any]]:
    """Per-GPU utilisation and memory through nvidia-ml-py; ``[]`` without a GPU or the package."""
    if not gpu_present():
        return []
    try:
        import pynvml
    except ImportError:
        return []
    out: list[dict[str, Any]] = []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # driver mismatch, no permission
        log.debug("sci_ext: NVML unavailable: %s", exc)
        return []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                temp: int | None = int(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
            except Exception:
                temp = None
            out.append(
                {
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "utilization_percent": float(util.gpu),
                    "memory_used_bytes": int(mem.used),
                    "memory_total_bytes": int(mem.total),
                    "temperature_c": temp,
                }
            )
    except Exception as exc:
        log.debug("sci_ext: reading GPUs failed: %s", exc)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception as exc:
            log.debug("sci_ext: nvmlShutdown failed: %s", exc)
    return out


def sample_resources(state_dir: Path | str) -> dict[str, Any]:
    """The ``resources`` block of the status API (blocking: run it in an executor)."""
    import psutil

    out: dict[str, Any] = {
        # Percent since the previous call (the sampler calls it every interval).
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "cpu_count": os.cpu_count() or 1,
        "memory": memory(),
        "gpus": gpus(),
    }
    try:
        out["disk"] = disk(state_dir)
    except OSError as exc:
        out["disk"] = {"path": str(state_dir), "error": str(exc)}
    return out
