"""A corpus of AI-Scientist-v2 ``bfts_config.yaml`` fork variants: each migrates losslessly or is refused in one line.

``tests/data/bfts_forks/*.yaml`` are our own files modelled on the upstream file
(``tests/data/bfts_config.yaml``) and on what forks add: OmegaConf interpolations,
model names with ``.``, ``/`` and ``:`` as keys, CRLF line endings, a BOM, CJK
comments, boolean spellings, nulls, counts of 0, integers beyond 64 bits, lists,
anchors, multi-line prompts.  The truth about each file is what AI-Scientist-v2 reads
from it: ``OmegaConf.load`` (unresolved).  Lossless means every leaf of that comes
back equal from ``get_config().bfts`` (typed fields, then ``extra``) after migrating.
A file whose first line is ``# expect-refused: KEY | REASON`` must instead be refused
with one line naming KEY and REASON, and write nothing.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from sci_ext.core import ConfigError
from sci_ext.core.config import ConfigManager
from sci_ext.core.config.bfts import BftsConfig
from sci_ext.core.config.files import join_dotted
from sci_ext.core.config.migrate import migrate
from sci_ext.core.config.schema import leaf_fields

FORKS = Path(__file__).parents[1] / "data" / "bfts_forks"
CORPUS = sorted(FORKS.glob("*.yaml"))
TYPED = leaf_fields(BftsConfig)


def _omegaconf_view(path: Path) -> dict[str, Any]:
    """What AI-Scientist-v2 sees: ``OmegaConf.load``, interpolations unresolved."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert isinstance(container, dict)
    return container


def _leaves(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            out.update(_leaves(value, path))
        else:
            out[path] = value
    return out


def _same(a: Any, b: Any, numeric: bool = False) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if numeric and type(a) in (int, float) and type(b) in (int, float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _expected_refusal(path: Path) -> tuple[str, str] | None:
    first = path.read_text(encoding="utf-8-sig").splitlines()[0]
    if not first.startswith("# expect-refused:"):
        return None
    key, _, reason = first.removeprefix("# expect-refused:").partition("|")
    return key.strip(), reason.strip()


def test_the_corpus_is_large_and_varied():
    assert len([p for p in CORPUS if _expected_refusal(p) is None]) >= 20
    raw = {p.name: p.read_bytes() for p in CORPUS}
    assert b"\r\n" in raw["01_upstream_crlf.yaml"]  # git kept the CRLF (see .gitattributes)
    assert raw["17_bom_odd_keys.yaml"].startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("fork", CORPUS, ids=lambda p: p.stem)
def test_fork_migrates_losslessly_or_is_refused_in_one_line(sci_env, fork):
    project = sci_env["project"]
    source = project / "bfts_config.yaml"
    shutil.copy(fork, source)
    target = project / "sci_ext.toml"
    refusal = _expected_refusal(fork)
    if refusal is not None:
        key, reason = refusal
        with pytest.raises(ConfigError) as info:
            migrate(source)
        message = str(info.value)
        assert "\n" not in message and key in message and reason in message, message
        assert not target.exists()
        return

    result = migrate(source)
    assert result.changed and target.exists()
    manager = ConfigManager()
    assert manager.last_error is None, manager.last_error
    bfts = manager.config.bfts
    view = _omegaconf_view(fork)
    as_yaml = bfts.to_yaml_dict()
    for path, value in _leaves(view).items():
        dotted = join_dotted(path)
        if dotted in TYPED:
            got: Any = bfts
            for part in path:
                got = getattr(got, part)
            numeric = TYPED[dotted].type is float
        else:
            assert dotted in bfts.extra, f"{fork.name}: {dotted} lost"
            got, numeric = bfts.extra[dotted], False
        assert _same(value, got, numeric), f"{fork.name}: {dotted}: {value!r} came back as {got!r}"
        node: Any = as_yaml
        for part in path:
            node = node[part]
        assert _same(value, node, numeric), f"{fork.name}: {dotted} in to_yaml_dict(): {node!r}"
    # Keys holding '.', '/' or ':' are quoted TOML keys, never split into tables.
    text = target.read_text(encoding="utf-8")
    for path in _leaves(view):
        for part in path:
            if "." in part:
                assert f'"{part}"' in text.replace('\\"', '"') or part.startswith(" "), (fork.name, part)
    again = migrate(source)
    assert not again.changed, f"{fork.name}: a second migration changed the file"


def test_a_dotted_model_name_is_one_key_not_nested_tables(sci_env):
    source = sci_env["project"] / "bfts_config.yaml"
    shutil.copy(FORKS / "04_openrouter_model_keys.yaml", source)
    migrate(source)
    text = (sci_env["project"] / "sci_ext.toml").read_text()
    assert '[bfts.model_costs."anthropic/claude-haiku-4.5"]' in text
    assert "[bfts.model_costs.anthropic/" not in text  # no table named anthropic/claude-haiku-4
    extra = ConfigManager().config.bfts.extra
    assert extra['model_costs."anthropic/claude-haiku-4.5".input'] == 1.0
    assert ConfigManager().config.bfts.to_yaml_dict()["model_costs"]["anthropic/claude-haiku-4.5"] == {
        "input": 1.0,
        "output": 5.0,
    }


def test_big_ints_and_nulls_are_stored_as_markers_other_toml_readers_accept(sci_env):
    import tomlkit

    source = sci_env["project"] / "bfts_config.yaml"
    shutil.copy(FORKS / "08_big_ints.yaml", source)
    migrate(source)
    text = (sci_env["project"] / "sci_ext.toml").read_text()
    assert 'seed = "sci_ext:int:340282366920938463463374607431768211457"' in text
    assert "int64_max = 9223372036854775807" in text  # in range: a plain TOML integer
    for value in tomlkit.parse(text)["bfts"].unwrap().values():  # every integer fits a signed 64-bit reader
        if isinstance(value, int):
            assert -(2**63) <= value < 2**63
    assert ConfigManager().config.bfts.extra["seed"] == 2**128 + 1


def test_zero_counts_are_accepted_as_ai_scientist_accepts_them(sci_env):
    source = sci_env["project"] / "bfts_config.yaml"
    shutil.copy(FORKS / "07_zero_counts.yaml", source)
    migrate(source)
    bfts = ConfigManager().config.bfts
    assert bfts.experiment.num_syn_datasets == 0 and bfts.agent.stages.stage2_max_iters == 0
    assert bfts.agent.search.num_drafts == 0 and bfts.agent.multi_seed_eval.num_seeds == 0
