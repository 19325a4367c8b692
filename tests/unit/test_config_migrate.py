"""Migration of AI-Scientist-v2's bfts_config.yaml and of older sci_ext files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from sci_ext.core import ConfigError
from sci_ext.core.config import ConfigManager
from sci_ext.core.config.migrate import migrate

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture
def bfts(sci_env) -> Path:
    path = sci_env["project"] / "bfts_config.yaml"
    shutil.copy(DATA / "bfts_config.yaml", path)
    return path


def test_bfts_migration_keeps_every_key_typed(sci_env, bfts):
    target = sci_env["project"] / "sci_ext.toml"
    result = migrate(bfts)
    assert result.changed and result.target == target and result.backup is None
    config = ConfigManager().config
    original = yaml.safe_load(bfts.read_text())
    b = config.bfts
    assert b.agent.type == "parallel" and b.agent.num_workers == 4
    assert b.agent.stages.stage4_max_iters == 18
    assert b.agent.code.model == original["agent"]["code"]["model"]
    assert b.agent.code.temp == 1.0 and b.agent.feedback.max_tokens == 8192
    assert b.agent.vlm_feedback.max_tokens is None and b.goal is None
    assert b.exec.timeout == 3600 and b.exec.format_tb_ipython is False
    assert b.agent.search.debug_prob == 0.5
    assert b.extra == {"agent.summary_model": "gpt-4o-mini"}  # unknown keys kept
    assert config.source("bfts.agent.num_workers").location == str(target)
    assert bfts.read_text() == (DATA / "bfts_config.yaml").read_text()  # source untouched

    def leaves(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(leaves(v, f"{prefix}{k}."))
            elif v is not None:
                out[f"{prefix}{k}"] = v
        return out

    for key, value in leaves(original).items():
        assert config[f"bfts.{key}"] == value, key


def test_second_run_changes_nothing(sci_env, bfts):
    migrate(bfts)
    target = sci_env["project"] / "sci_ext.toml"
    before = target.read_bytes()
    again = migrate(bfts)
    assert not again.changed and again.backup is None and "nothing to migrate" in again.summary()
    assert target.read_bytes() == before
    assert len(list(target.parent.glob("sci_ext.toml.bak-*"))) == 0


def test_existing_project_file_is_backed_up_and_kept(sci_env, bfts):
    target = sci_env["project"] / "sci_ext.toml"
    target.write_text("# team settings\n[rag]\ntop_k = 9\n")
    result = migrate(bfts)
    assert result.backup is not None and result.backup.read_text() == "# team settings\n[rag]\ntop_k = 9\n"
    text = target.read_text()
    assert "# team settings" in text and "top_k = 9" in text and "[bfts.agent]" in text
    assert ConfigManager().config.rag.top_k == 9


def test_dry_run_prints_a_diff_and_writes_nothing(sci_env, bfts):
    result = migrate(bfts, dry_run=True)
    assert result.changed and result.dry_run
    assert "+[bfts.agent]" in result.diff and "+num_workers = 4" in result.diff
    assert not (sci_env["project"] / "sci_ext.toml").exists()
    assert "dry run" in result.summary()


def test_invalid_bfts_values_are_rejected_with_line(sci_env, bfts):
    text = bfts.read_text().replace("type: parallel", "type: paralell").replace("temp: 0.5", "temp: 3.0", 1)
    bfts.write_text(text)
    with pytest.raises(ConfigError) as info:
        migrate(bfts)
    problems = info.value.problems  # type: ignore[attr-defined]
    line = text.splitlines().index("  type: paralell") + 1
    assert f"bfts_config.yaml line {line}: agent.type: must be one of 'parallel', 'sequential'" in problems[0]
    assert any(": agent.feedback.temp: must be <= 2" in p for p in problems)
    assert not (sci_env["project"] / "sci_ext.toml").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agent: [1, 2\n", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("agent:\n  num_workers: -2\n", "must be >= 1"),
    ],
)
def test_broken_yaml(sci_env, text, message):
    path = sci_env["project"] / "bfts_config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        migrate(path)


def test_refuses_to_rewrite_a_broken_target(sci_env, bfts):
    target = sci_env["project"] / "sci_ext.toml"
    target.write_text("[rag\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        migrate(bfts)
    assert target.read_text() == "[rag\n"


def test_schema_upgrade_renames_keys_in_place(sci_env):
    old = sci_env["project"] / "sci_ext.toml"
    old.write_text("# old file\n[cache]\nttl = 60 # a minute\n[retry]\nmax_retries = 4\n")
    assert "renamed" in (ConfigManager().last_error or "")
    result = migrate(old)
    assert result.changed and result.backup is not None
    assert "renamed cache.ttl -> cache.ttl_seconds" in result.summary()
    manager = ConfigManager()
    assert manager.last_error is None
    assert manager.config.cache.ttl_seconds == 60.0 and manager.config.retry.max_attempts == 4
    assert "# old file" in old.read_text() and "schema_version = 2" in old.read_text()
    assert not migrate(old).changed


def test_explicit_old_schema_version_is_upgraded(sci_env):
    old = sci_env["project"] / "sci_ext.toml"
    old.write_text("schema_version = 1\n[rag]\ntop_k = 2\n")
    assert "outdated" in (ConfigManager().last_error or "")
    migrate(old)
    assert ConfigManager().config.rag.top_k == 2


def test_unknown_file_kind_and_missing_file(sci_env):
    other = sci_env["project"] / "settings.ini"
    other.write_text("[x]\n")
    with pytest.raises(ConfigError, match="don't know how to migrate"):
        migrate(other)
    with pytest.raises(ConfigError, match="no such file"):
        migrate(sci_env["project"] / "missing.yaml")


def test_nothing_migrates_on_import(sci_env, bfts):
    import importlib

    import sci_ext

    importlib.reload(sci_ext)
    ConfigManager()
    assert not (sci_env["project"] / "sci_ext.toml").exists()


def _omegaconf_leaves(node: object, prefix: str = "") -> dict[str, object]:
    """Every leaf as OmegaConf reads it: paths as strings, ??? as ???, interpolations unresolved."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(node, resolve=False) if prefix == "" else node  # type: ignore[arg-type]
    out: dict[str, object] = {}
    for key, value in data.items():  # type: ignore[union-attr]
        if isinstance(value, dict) and value:
            out.update(_omegaconf_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value) if isinstance(value, Path) else value
    return out


def test_omegaconf_saved_run_config_migrates_every_leaf(sci_env):
    """A run's merged config as AI-Scientist-v2 saves it (OmegaConf.save): Path tags, ???, interpolations."""
    from omegaconf import OmegaConf

    saved = sci_env["project"] / "config.yaml"
    original = yaml.safe_load((DATA / "bfts_config.yaml").read_text())
    original["log_dir"] = Path("/runs/logs/0-run")
    original["workspace_dir"] = Path("/runs/workspaces/0-run")
    original["data_dir"] = Path("/data/input")
    original["desc_file"] = "???"
    original["exp_name"] = "???"
    original["report"]["model"] = "${agent.code.model}"
    OmegaConf.save(OmegaConf.create(original), saved)
    text = saved.read_text()
    assert "!!python/object/apply:pathlib.PosixPath" in text and "???" in text  # the real format
    result = migrate(saved)
    summary = result.summary()
    assert "bfts.exp_name (line" in summary and "OmegaConf's missing value" in summary
    assert "interpolation(s) kept as text" in summary and "bfts.report.model" in summary
    b = ConfigManager().config.bfts
    oracle = _omegaconf_leaves(OmegaConf.load(saved))
    assert b.log_dir == oracle["log_dir"] == "/runs/logs/0-run" and b.data_dir == "/data/input"
    assert b.report.model == oracle["report.model"] == "${agent.code.model}"
    assert b.extra["desc_file"] == "???"  # an untyped key: kept as the text
    assert b.exp_name == "run"  # a typed key left missing: sci_ext's default, as the note says
    for dotted, value in oracle.items():  # every leaf kept
        if dotted == "exp_name":
            continue
        got: object = b.extra[dotted] if dotted in b.extra else b
        if dotted not in b.extra:
            for part in dotted.split("."):
                got = getattr(got, part)
        assert got == value, dotted


def test_unknown_yaml_tag_is_refused_with_line_and_tag(sci_env):
    path = sci_env["project"] / "config.yaml"
    path.write_text("agent:\n  steps: 3\nthing: !!python/object:os.system\n  x: 1\n")
    with pytest.raises(ConfigError, match=r"line 3: the tag !!python/object:os.system is not one OmegaConf.load"):
        migrate(path)
    path.write_text("agent:\n  steps: [3\n")
    with pytest.raises(ConfigError, match=r"line \d: invalid YAML"):
        migrate(path)


def _saved_config_strategy():
    from hypothesis import strategies as st

    key = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
    leaf = st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.none(),
        st.sampled_from(["???", "${agent.code.model}", "${oc.env:HOME}", "sci_ext:x", "", "1e-5", "yes"]),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
        st.builds(lambda parts: Path("/", *parts), st.lists(key, min_size=1, max_size=3)),
    )
    tree = st.recursive(leaf, lambda inner: st.dictionaries(key, inner, min_size=1, max_size=3), max_leaves=10)
    return st.dictionaries(key.map(lambda k: f"run_{k}"), tree, min_size=1, max_size=4)


def test_any_saved_run_config_keeps_every_leaf_as_omegaconf_reads_it(tmp_path):
    """Property: what OmegaConf.save writes (paths, ???, interpolations, any scalar) migrates leaf for leaf."""
    from hypothesis import HealthCheck, given, reject, settings
    from omegaconf import OmegaConf
    from omegaconf.errors import GrammarParseError

    counter = iter(range(10**9))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_saved_config_strategy())
    def check(data):
        work = tmp_path / f"case{next(counter)}"
        work.mkdir()
        saved, target = work / "config.yaml", work / "sci_ext.toml"
        try:
            created = OmegaConf.create(data)
        except GrammarParseError:  # a text OmegaConf itself refuses (a stray "\\" or "${"): no saved config has it
            reject()
        OmegaConf.save(created, saved)
        migrate(saved, target=target)
        extra = ConfigManager(project_path=target, user_path=work / "none.toml", environ={}).config.bfts.extra
        oracle = _omegaconf_leaves(OmegaConf.load(saved))
        assert {k: v for k, v in extra.items()} == oracle

    check()
