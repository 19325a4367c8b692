"""The cheap probe "could any config layer set something?" agrees with the configuration itself.

``sci_ext.core.config_sources.has_sources`` lets a kernel's first cells skip building the
configuration (auto mode reads ``cache.auto`` on every cell).  The oracle is the
configuration: whenever the probe says "only defaults", a fully built
:class:`~sci_ext.core.config.ConfigManager` must hold exactly the defaults, and whenever
discovery finds a project file, the probe must have seen it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sci_ext.core.config import CacheConfig, ConfigManager, find_project_file
from sci_ext.core.config_sources import has_sources, is_setting_variable, project_dirs, user_config_path


def test_the_defaults_used_without_the_configuration_are_the_configurations():
    from sci_ext.core.config import CoreConfig, MonitoringConfig
    from sci_ext.core.config_sources import PROBE_SECONDS
    from sci_ext.core.telemetry.subscribe import METRICS_DEFAULT
    from sci_ext.kernel.cellcache.auto import _AUTO_DEFAULT

    assert CacheConfig().auto is _AUTO_DEFAULT
    assert MonitoringConfig().metrics_enabled is METRICS_DEFAULT
    assert CoreConfig().reload_interval_seconds == PROBE_SECONDS


def test_only_defaults_looks_at_most_once_per_interval_and_never_once_built(sci_env, monkeypatch):
    from sci_ext.core import config_sources
    from sci_ext.core.config import get_config_manager, set_config_manager

    answers = [False, True]
    looks: list[bool] = []

    def has_sources() -> bool:
        looks.append(answers[min(len(looks), 1)])
        return looks[-1]

    monkeypatch.setattr(config_sources, "has_sources", has_sources)
    monkeypatch.setattr(config_sources, "_next_probe", 0.0)
    set_config_manager(None)  # nothing has built the configuration
    assert [config_sources.only_defaults() for _ in range(50)] == [True] * 50  # a file appearing now...
    assert looks == [False]  # ...is seen at the next look, not on every cell
    monkeypatch.setattr(config_sources, "_next_probe", 0.0)  # PROBE_SECONDS later
    assert config_sources.only_defaults() is False and looks == [False, True]
    monkeypatch.setattr(config_sources, "_found", False)
    get_config_manager()  # built (by %sci_config, a feature, the monitor's tick): read it, look no more
    assert config_sources.only_defaults() is False and looks == [False, True]


@pytest.mark.parametrize(
    ("name", "setting"),
    [
        ("SCI_EXT_CACHE__AUTO", True),
        ("SCI_EXT_Cache__Auto", True),  # the configuration lower-cases what follows the prefix
        ("SCI_EXT_CORE__LOG_LEVEL", True),
        ("SCI_EXT_VAULT_PASSPHRASE", False),
        ("SCI_EXT_KERNEL_ID", False),
        ("SCI_EXT_CONFIG_FILE", False),  # names the user file: its existence is what counts
        ("XSCI_EXT_CACHE__AUTO", False),
    ],
)
def test_setting_variables(name, setting):
    assert is_setting_variable(name) is setting


def test_a_setting_variable_is_a_source(sci_env):
    assert not has_sources(sci_env["project"], {"SCI_EXT_VAULT_PASSPHRASE": "x"})
    assert has_sources(sci_env["project"], {"SCI_EXT_CACHE__AUTO": "false"})


def test_the_user_file_and_an_explicit_one_count(sci_env, monkeypatch, tmp_path):
    assert not has_sources(sci_env["project"], {})
    user = user_config_path()
    assert user == sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"
    user.parent.mkdir()
    user.write_text("")
    assert has_sources(sci_env["project"], {})
    user.unlink()
    other = tmp_path / "slot.toml"
    monkeypatch.setenv("SCI_EXT_CONFIG_FILE", str(other))
    assert not has_sources(sci_env["project"], {})
    other.write_text("")
    assert has_sources(sci_env["project"], {})


@st.composite
def layouts(draw):
    """A directory ``depth`` levels below a home, a project file / ``.git`` / user file somewhere or not."""
    depth = draw(st.integers(0, 3))
    level = st.one_of(st.none(), st.integers(0, depth))  # 0 = the cwd, depth = the home
    return {
        "depth": depth,
        "project": draw(level),
        "git": draw(level),
        "user": draw(st.sampled_from([None, "", "[cache]\nauto = true\n", "[core]\nlog_level = 'DEBUG'\n"])),
        "env": draw(st.sampled_from([{}, {"SCI_EXT_CACHE__AUTO": "true"}, {"SCI_EXT_VAULT_PASSPHRASE": "x"}])),
        "project_text": draw(st.sampled_from(["", "[cache]\nauto = true\n", "[retry]\nmax_attempts = 7\n"])),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts())
def test_only_defaults_when_the_probe_finds_no_source(sci_env, monkeypatch, layout):
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(os.path.realpath(tmp)) / "home"
        levels = [home / "/".join(["d"] * (layout["depth"] - i)) if i < layout["depth"] else home for i in range(3 + 1)]
        cwd = levels[0]
        cwd.mkdir(parents=True)
        os.chmod(home, 0o700)
        if layout["project"] is not None:
            (levels[layout["project"]] / "sci_ext.toml").write_text(layout["project_text"])
        if layout["git"] is not None:
            (levels[layout["git"]] / ".git").mkdir()
        user = home / "config" / "sci_ext" / "config.toml"
        monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
        monkeypatch.setenv("HOME", str(home))
        if layout["user"] is not None:
            user.parent.mkdir(parents=True, mode=0o700)
            user.write_text(layout["user"])
            user.chmod(0o600)
        env = layout["env"]

        probe = has_sources(cwd, env)
        dirs = list(project_dirs(cwd))
        assert dirs[0] == cwd and dirs[-1] in (home, *[d for d in dirs if (d / ".git").exists()])
        found = find_project_file(cwd)
        if found is not None:
            assert probe and found.parent in dirs  # discovery never looks where the probe did not
        if not probe:
            built = ConfigManager(cwd=cwd, environ=env).config
            assert built == ConfigManager(load=False).config
            assert {source.layer for *_, source in built.rows()} == {"default"}


def test_replacing_the_configuration_makes_readers_look_again(sci_env, monkeypatch):
    from sci_ext.core import config_sources
    from sci_ext.core.config import set_config_manager

    monkeypatch.setattr(config_sources, "_next_probe", 0.0)
    set_config_manager(None)
    assert config_sources.only_defaults()  # looked: nothing
    (sci_env["project"] / "sci_ext.toml").write_text("[cache]\nauto = true\n")
    assert config_sources.only_defaults()  # within the interval: not seen yet
    set_config_manager(None)  # a tool or test replaced the configuration
    assert not config_sources.only_defaults()
