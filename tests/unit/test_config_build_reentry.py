"""Reading the configuration while this thread builds it: no garbage collection inside the
build (finalizers read it), and a read that still happens fails at once instead of hanging."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from sci_ext.core import config as config_pkg
from sci_ext.core.config import get_config, set_config_manager
from sci_ext.core.config.manager import ConfigManager


def _in_thread(target: Any, timeout: float = 30.0) -> list[Any]:
    """Run ``target`` in a daemon thread; its result or exception (a hang fails the test, not the run)."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(target())
        except BaseException as exc:  # noqa: BLE001  # the test inspects it
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "reading the configuration hung"
    return out


def test_no_collection_runs_inside_the_build_and_it_is_on_again_after(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    original = ConfigManager.__init__

    def init(self: ConfigManager, *args: Any, **kwargs: Any) -> None:
        seen.append(gc.isenabled())
        original(self, *args, **kwargs)

    monkeypatch.setattr(ConfigManager, "__init__", init)
    set_config_manager(None)
    assert gc.isenabled()
    get_config()
    assert seen == [False]
    assert gc.isenabled()


def test_collection_stays_off_after_the_build_when_it_was_off(monkeypatch: pytest.MonkeyPatch) -> None:
    set_config_manager(None)
    gc.disable()
    try:
        get_config()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_read_from_inside_the_build_raises_instead_of_waiting_for_its_own_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = ConfigManager.__init__

    def init(self: ConfigManager, *args: Any, **kwargs: Any) -> None:
        get_config()  # what an LLM stream's finalizer did when a collection ran here
        original(self, *args, **kwargs)

    monkeypatch.setattr(ConfigManager, "__init__", init)
    set_config_manager(None)
    (result,) = _in_thread(get_config)
    assert isinstance(result, RuntimeError)
    assert "while this thread is building it" in str(result)
    assert not config_pkg.building() and gc.isenabled()
    monkeypatch.setattr(ConfigManager, "__init__", original)
    (result,) = _in_thread(get_config)
    assert not isinstance(result, BaseException)  # the failed build left nothing behind
