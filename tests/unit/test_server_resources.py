"""Resources of the status API (one module for kernels and server): cgroup limits (v1 and v2), disk, GPUs.

The cgroup files are real files in a temporary tree laid out like ``/sys/fs/cgroup``.
GPUs: this machine has none, so NVML (``pynvml`` from nvidia-ml-py) is MOCKED by a
stand-in module, and the device check is patched; that is the only mock here.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from sci_ext.core.telemetry import resources


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return root


def test_cgroup_v2_limit(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"memory.max": str(512 * 2**20), "memory.current": str(128 * 2**20)})
    assert resources.cgroup_memory(root) == (128 * 2**20, 512 * 2**20)
    mem = resources.memory_info(root)
    assert mem == {"used_bytes": 128 * 2**20, "total_bytes": 512 * 2**20, "percent": 25.0, "limit_source": "cgroup"}


def test_cgroup_v1_limit(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"memory/memory.limit_in_bytes": str(2**30), "memory/memory.usage_in_bytes": str(2**28)},
    )
    assert resources.memory_info(root)["limit_source"] == "cgroup"
    assert resources.memory_info(root)["percent"] == 25.0


@pytest.mark.parametrize(
    "files",
    [
        {"memory.max": "max", "memory.current": "1"},
        {"memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": "1"},
        {"memory.max": "garbage", "memory.current": "1"},
        {},
    ],
)
def test_no_cgroup_limit_uses_host(tmp_path: Path, files: dict[str, str]) -> None:
    root = _tree(tmp_path, files)
    assert resources.cgroup_memory(root) is None
    mem = resources.memory_info(root)
    assert mem["limit_source"] == "host" and mem["total_bytes"] > 0 and 0 <= mem["percent"] <= 100


def test_limit_above_host_memory_uses_host(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"memory.max": str(2**50), "memory.current": "1"})
    assert resources.memory_info(root)["limit_source"] == "host"


def test_disk_of_missing_dir_uses_parent(tmp_path: Path) -> None:
    info = resources.disk_info(tmp_path / "not" / "yet")
    assert info["path"] == str(tmp_path / "not" / "yet") and info["total_bytes"] > info["free_bytes"] >= 0


def test_no_gpu_here_means_no_nvml_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # importing it would raise ImportError
    if resources.gpu_present():  # pragma: no cover - a GPU machine
        pytest.skip("this machine has an NVIDIA device")
    assert resources.gpu_info() == []


def _fake_pynvml(devices: list[dict], fail_init: bool = False) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's ``pynvml`` (MOCK: no GPU on this machine)."""
    mod = types.ModuleType("pynvml")
    mod.NVML_TEMPERATURE_GPU = 0
    mod.calls = []

    def init():
        mod.calls.append("init")
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    mod.nvmlInit = init
    mod.nvmlShutdown = lambda: mod.calls.append("shutdown")
    mod.nvmlDeviceGetCount = lambda: len(devices)
    mod.nvmlDeviceGetHandleByIndex = lambda i: devices[i]
    mod.nvmlDeviceGetName = lambda h: h["name"]
    mod.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=h["util"], memory=0)
    mod.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=h["used"], total=h["total"], free=0)

    def temperature(h, sensor):
        if h.get("temp") is None:
            raise RuntimeError("not supported")
        return h["temp"]

    mod.nvmlDeviceGetTemperature = temperature
    return mod


def test_gpus_through_mocked_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_pynvml(
        [
            {"name": b"NVIDIA A100-SXM4-40GB", "util": 35, "used": 10 * 2**30, "total": 40 * 2**30, "temp": 61},
            {"name": "NVIDIA T4", "util": 0, "used": 0, "total": 16 * 2**30, "temp": None},
        ]
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(resources, "gpu_present", lambda: True)
    gpus = resources.gpu_info()
    assert gpus == [
        {"index": 0, "name": "NVIDIA A100-SXM4-40GB", "utilization_percent": 35.0,
         "memory_used_bytes": 10 * 2**30, "memory_total_bytes": 40 * 2**30, "temperature_c": 61},
        {"index": 1, "name": "NVIDIA T4", "utilization_percent": 0.0,
         "memory_used_bytes": 0, "memory_total_bytes": 16 * 2**30, "temperature_c": None},
    ]  # fmt: skip
    assert fake.calls == ["init", "shutdown"]


def test_gpu_driver_missing_gives_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml([], fail_init=True))
    monkeypatch.setattr(resources, "gpu_present", lambda: True)
    assert resources.gpu_info() == []


def test_gpu_package_missing_gives_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(resources, "gpu_present", lambda: True)
    assert resources.gpu_info() == []


def test_sample_resources_shape(tmp_path: Path) -> None:
    out = resources.resources(tmp_path)
    assert set(out) == {"cpu_percent", "cpu_count", "memory", "disk", "gpus"}
    assert 0 <= out["cpu_percent"] <= 100 and out["disk"]["path"] == str(tmp_path)


def test_health_endpoint_urls() -> None:
    from sci_ext.cli.health_url import health_endpoint

    assert health_endpoint("http://127.0.0.1:8888") == "http://127.0.0.1:8888/sci/health"
    assert health_endpoint("http://h:1/base/") == "http://h:1/base/sci/health"
    assert health_endpoint("https://h/base/sci/health?x=1") == "https://h/base/sci/health"
    for bad in ("ftp://h/", "127.0.0.1:8888", "file:///etc/passwd", ""):
        with pytest.raises(ValueError, match="--url"):
            health_endpoint(bad)
