"""Typed, layered, validated configuration (docs/config.md).

>>> from sci_ext.core import get_rag_config
>>> get_rag_config().chunk_size
1000
"""

from __future__ import annotations

import gc
import threading
from typing import Any

from ..config_sources import reset_probe

# The AI-Scientist (bfts) and RAG sections register themselves through register_section.
from . import bfts as _bfts  # noqa: F401
from .manager import (
    LAYERS,
    SCHEMA_VERSION,
    Config,
    ConfigEvent,
    ConfigManager,
    Source,
    find_project_file,
    register_section,
    registered_sections,
    user_config_path,
)
from .rag import RAGConfig, get_rag_config
from .sections import (
    BreakerConfig,
    CacheConfig,
    CoreConfig,
    MonitoringConfig,
    RetryConfig,
    SecurityConfig,
    setting,
)

__all__ = [
    "LAYERS",
    "SCHEMA_VERSION",
    "BreakerConfig",
    "CacheConfig",
    "Config",
    "ConfigEvent",
    "ConfigManager",
    "CoreConfig",
    "MonitoringConfig",
    "RAGConfig",
    "RetryConfig",
    "SecurityConfig",
    "Source",
    "building",
    "current_config_manager",
    "find_project_file",
    "get_config",
    "get_config_manager",
    "get_core_config",
    "get_rag_config",
    "register_section",
    "registered_sections",
    "set_config_manager",
    "setting",
    "user_config_path",
]

_manager: ConfigManager | None = None
_manager_lock = threading.Lock()
_building = threading.local()


def building() -> bool:
    """True in the thread that is creating the process-wide manager right now.

    Reading the files may log (a protected key not applied); a listener of those records
    must not read the configuration back (the telemetry that starts on the first
    ``sci_ext`` record does): it would wait for the lock its own thread holds.
    """
    return bool(getattr(_building, "active", False))


def get_config_manager() -> ConfigManager:
    """The process-wide :class:`ConfigManager`, created on first use."""
    global _manager
    if _manager is None:
        if building():
            # Waiting would be waiting for this thread: fail loudly instead of hanging the kernel.
            raise RuntimeError(
                "sci_ext: the configuration was read while this thread is building it "
                "(a log listener or finalizer running inside the build); read it after the build"
            )
        with _manager_lock:
            if _manager is None:
                _building.active = True
                # No garbage collection during the build: a collection runs finalizers in this
                # thread, and an abandoned LLM stream's finalizer records its usage, which reads
                # the configuration (a kernel hung so in the test suite).  They run after it.
                collecting = gc.isenabled()
                gc.disable()
                try:
                    _manager = ConfigManager()
                finally:
                    _building.active = False
                    if collecting:
                        gc.enable()
    return _manager


def set_config_manager(manager: ConfigManager | None) -> None:
    """Replace the process-wide manager (``None``: create a fresh one on next use)."""
    global _manager
    with _manager_lock:
        if _manager is not None and _manager is not manager:
            _manager.stop_watching()
        _manager = manager
    reset_probe()  # the files and variables may differ now: per-cell readers look again


def current_config_manager() -> ConfigManager | None:
    """The process-wide manager if something has created it, else ``None`` (never creates one).

    The kernel's per-cell hot-reload check uses it: while nobody has read the
    configuration there is nothing to reload (the first read sees the files as they are).
    """
    return _manager


def get_config() -> Config:
    """The current merged configuration."""
    return get_config_manager().config


def get_core_config() -> CoreConfig:
    """The ``core`` section."""
    section: Any = get_config().core
    return section
