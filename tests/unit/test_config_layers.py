"""The five layers of configuration, merged key by key, with a source per value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import sci_ext
from sci_ext.core import ConfigError, get_config, get_config_manager, get_core_config, get_rag_config
from sci_ext.core.config import ConfigManager, register_section, setting, user_config_path
from sci_ext.core.config.registry import _SECTIONS


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_match_the_seed_rag_config():
    rag = get_rag_config()
    assert (rag.chunk_size, rag.chunk_overlap, rag.top_k, rag.similarity_threshold) == (1000, 200, 5, 0.7)
    assert rag.embedding_model and rag.vector_store == "faiss"
    assert str(get_config().source("rag.chunk_size")) == "default"


def test_public_api_is_reexported_from_sci_ext():
    assert sci_ext.get_config_manager is get_config_manager
    assert sci_ext.get_rag_config() is get_config().rag
    assert get_core_config() is get_config().core
    with pytest.raises(AttributeError, match="no attribute"):
        sci_ext.does_not_exist  # noqa: B018


def test_xdg_defaults_follow_the_environment(sci_env):
    config = get_config()
    assert config.core.state_dir == str(sci_env["XDG_STATE_HOME"] / "sci_ext")
    assert config.cache.dir.startswith(str(sci_env["XDG_CACHE_HOME"]))
    assert config.security.vault_path == str(sci_env["XDG_DATA_HOME"] / "sci_ext" / "vault.json")
    assert user_config_path() == sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"


def test_layers_merge_key_by_key_later_wins(sci_env, monkeypatch):
    user = write(user_config_path(), "[cache]\nttl_seconds = 100\nnotify = false\n[retry]\nmax_attempts = 4\n")
    project = write(sci_env["project"] / "sci_ext.toml", "[cache]\nttl_seconds = 200\n")
    monkeypatch.setenv("SCI_EXT_RETRY__MAX_ATTEMPTS", "6")
    manager = ConfigManager()
    config = manager.config
    assert config.cache.ttl_seconds == 200.0
    assert config.source("cache.ttl_seconds").layer == "project"
    assert config.source("cache.ttl_seconds").location == str(project)
    assert config.cache.notify is False and config.source("cache.notify").location == str(user)
    assert config.retry.max_attempts == 6
    assert str(config.source("retry.max_attempts")) == "env (SCI_EXT_RETRY__MAX_ATTEMPTS)"
    assert config.retry.max_wait == 30.0 and config.source("retry.max_wait").layer == "default"
    manager.set("retry.max_attempts", 9)
    assert manager.config.retry.max_attempts == 9 and manager.source("retry.max_attempts").layer == "runtime"
    manager.reset("retry.max_attempts")
    assert manager.config.retry.max_attempts == 6


def test_project_file_is_found_in_a_parent_directory(sci_env, monkeypatch):
    write(sci_env["project"] / "sci_ext.toml", "[rag]\ntop_k = 11\n")
    deeper = sci_env["project"] / "a" / "b"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    assert ConfigManager().config.rag.top_k == 11


@pytest.mark.parametrize(
    ("var", "raw", "key", "expected"),
    [
        ("SCI_EXT_CACHE__TTL_SECONDS", "600", "cache.ttl_seconds", 600.0),
        ("SCI_EXT_CACHE__TTL_SECONDS", "none", "cache.ttl_seconds", None),
        ("SCI_EXT_CACHE__NOTIFY", "off", "cache.notify", False),
        ("SCI_EXT_CORE__HOT_RELOAD", "YES", "core.hot_reload", True),
        ("SCI_EXT_RAG__TOP_K", "1_0", "rag.top_k", 10),
        ("SCI_EXT_RAG__VECTOR_STORE", "chroma", "rag.vector_store", "chroma"),
        ("SCI_EXT_BFTS__AGENT__NUM_WORKERS", "8", "bfts.agent.num_workers", 8),
    ],
)
def test_environment_values_are_coerced(monkeypatch, var, raw, key, expected):
    monkeypatch.setenv(var, raw)
    manager = ConfigManager()
    assert manager.last_error is None
    assert manager.get(key) == expected


def test_unrelated_sci_ext_variables_are_not_config(monkeypatch):
    monkeypatch.setenv("SCI_EXT_VAULT_PASSPHRASE", "x")
    assert ConfigManager().last_error is None


def test_runtime_set_many_is_all_or_nothing():
    manager = get_config_manager()
    with pytest.raises(ConfigError, match="rag.top_k"):
        manager.set_many({"rag.chunk_size": 500, "rag.top_k": 0})
    assert manager.config.rag.chunk_size == 1000
    manager.set_many({"rag.chunk_size": 500, "rag.top_k": "3"})
    assert (manager.config.rag.chunk_size, manager.config.rag.top_k) == (500, 3)
    assert manager.runtime_overrides == {"rag.chunk_size": 500, "rag.top_k": 3}
    manager.reset()
    assert manager.runtime_overrides == {} and manager.config.rag.chunk_size == 1000


def test_rows_give_value_type_and_source():
    rows = {key: (value, kind, str(source)) for key, value, kind, source in get_config().rows("retry")}
    assert rows["retry.max_attempts"] == (3, "integer", "default")
    assert rows["retry.initial_wait"][1] == "number"
    assert all(key.startswith("retry.") for key in rows)
    assert get_config().rows("cache.ttl_seconds")[0][2] == "number or none"


@dataclass
class PluginConfig:
    endpoint: str = setting("http://localhost", doc="Where the plugin talks to.")
    workers: int = setting(2, doc="Workers.", min=1, max=8)
    secret_token: str = setting("", doc="Token.", secret=True)


@dataclass
class PluginConfig2:
    x: int = setting(1, doc="x")


def test_third_party_section_registration(monkeypatch):
    register_section("myplugin", PluginConfig)
    try:
        monkeypatch.setenv("SCI_EXT_MYPLUGIN__WORKERS", "4")
        manager = ConfigManager()
        assert manager.config.myplugin.workers == 4
        with pytest.raises(ConfigError, match=r"myplugin.workers: must be <= 8"):
            manager.set("myplugin.workers", 9)
        manager.set("myplugin.secret_token", "abc")
        assert dict((k, v) for k, v, _, _ in manager.config.rows("myplugin"))["myplugin.secret_token"] == "[hidden]"
        with pytest.raises(ConfigError, match="already registered"):
            register_section("myplugin", PluginConfig2)
        with pytest.raises(ConfigError, match="is not a dataclass"):
            register_section("other", dict)
        with pytest.raises(ConfigError, match="lower-case identifier"):
            register_section("My-Plugin", PluginConfig)
    finally:
        _SECTIONS.pop("myplugin", None)


def test_config_lookup_errors_suggest():
    config = get_config()
    with pytest.raises(AttributeError, match="did you mean cache"):
        config.cahce  # noqa: B018
    with pytest.raises(KeyError, match=r"did you mean cache.ttl_seconds\?"):
        config["cache.ttl_second"]


def test_docstring_examples_run():
    import doctest

    import sci_ext.core.config as package
    from sci_ext.core.config import manager, model

    for module in (package, manager, model):
        failed, _ = doctest.testmod(module)
        assert failed == 0, module.__name__
