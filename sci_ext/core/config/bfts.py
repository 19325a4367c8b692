"""The ``bfts`` section: AI-Scientist-v2's ``bfts_config.yaml``, typed.

The known keys of the upstream file are typed and checked here; keys this module
does not know are kept under ``extra`` (dotted names; a key holding a ``.`` is
quoted: ``model_costs."gpt-4.5".input``), so a migrated file loses nothing.
Ranges are those AI-Scientist-v2 works with: counts of 0 (``num_syn_datasets``,
``stageN_max_iters``, ``num_drafts``, ...) are accepted, as it accepts them.
Values TOML cannot hold (``null``, integers beyond 64 bits, empty mappings) are
stored as markers in ``extra`` and decoded on load (see :mod:`.bfts_yaml`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .registry import register_section
from .sections import setting

__all__ = ["BftsConfig"]


@dataclass
class ExecConfig:
    """``exec``: how the agent runs generated code."""

    timeout: int = setting(3600, doc="Seconds a generated script may run.", min=1)
    agent_file_name: str = setting("runfile.py", doc="File the agent writes code into.")
    format_tb_ipython: bool = setting(False, doc="Format tracebacks the IPython way.")


@dataclass
class ReportConfig:
    """``report``: the final report writer."""

    model: str = setting("gpt-4o-2024-11-20", doc="Model writing the report.")
    temp: float = setting(1.0, doc="Sampling temperature.", min=0.0, max=2.0)


@dataclass
class ExperimentConfig:
    """``experiment``."""

    num_syn_datasets: int = setting(1, doc="Synthetic datasets generated (0 and 1: no extra ones).", min=0)


@dataclass
class DebugConfig:
    """``debug``."""

    stage4: bool = setting(False, doc="Jump to stage 4 for debugging.")


@dataclass
class StagesConfig:
    """``agent.stages``: iteration budgets of the four stages."""

    stage1_max_iters: int = setting(20, doc="Stage 1 iterations.", min=0)
    stage2_max_iters: int = setting(12, doc="Stage 2 iterations.", min=0)
    stage3_max_iters: int = setting(12, doc="Stage 3 iterations.", min=0)
    stage4_max_iters: int = setting(18, doc="Stage 4 iterations.", min=0)


@dataclass
class MultiSeedEvalConfig:
    """``agent.multi_seed_eval``."""

    num_seeds: int = setting(3, doc="Seeds per evaluation.", min=0)


@dataclass
class ModelConfig:
    """A model used by the agent (``code``, ``feedback``, ``vlm_feedback``)."""

    model: str = setting("gpt-4o-2024-11-20", doc="Model name.")
    temp: float = setting(1.0, doc="Sampling temperature.", min=0.0, max=2.0)
    max_tokens: int | None = setting(None, doc="Token limit of one reply.", min=1)


@dataclass
class SearchConfig:
    """``agent.search``: the tree search."""

    max_debug_depth: int = setting(3, doc="Debug attempts along one branch.", min=0)
    debug_prob: float = setting(0.5, doc="Probability of debugging a buggy node.", min=0, max=1)
    num_drafts: int = setting(3, doc="Initial drafts.", min=0)


@dataclass
class AgentConfig:
    """``agent``: the best-first tree search agent."""

    type: str = setting("parallel", doc="Agent kind.", choices=("parallel", "sequential"))
    num_workers: int = setting(4, doc="Parallel workers.", min=1)
    stages: StagesConfig = field(default_factory=StagesConfig)
    steps: int = setting(5, doc="Steps per stage.", min=0)
    k_fold_validation: int = setting(1, doc="Folds of cross-validation (0 and 1: none).", min=0)
    multi_seed_eval: MultiSeedEvalConfig = field(default_factory=MultiSeedEvalConfig)
    expose_prediction: bool = setting(False, doc="Expose the prediction function.")
    data_preview: bool = setting(False, doc="Show a data preview to the agent.")
    code: ModelConfig = field(
        default_factory=lambda: ModelConfig(
            model="anthropic.claude-3-5-sonnet-20241022-v2:0", temp=1.0, max_tokens=12000
        )
    )
    feedback: ModelConfig = field(default_factory=lambda: ModelConfig(temp=0.5, max_tokens=8192))
    vlm_feedback: ModelConfig = field(default_factory=lambda: ModelConfig(temp=0.5))
    search: SearchConfig = field(default_factory=SearchConfig)


@dataclass
class BftsConfig:
    """AI-Scientist-v2's ``bfts_config.yaml``, kept whole (unknown keys in ``extra``)."""

    __sci_allow_extra__ = True

    data_dir: str = setting("data", doc="Input data directory.")
    preprocess_data: bool = setting(False, doc="Preprocess the data first.")
    goal: str | None = setting(None, doc="Research goal.")
    eval: str | None = setting(None, doc="Evaluation instructions.")
    log_dir: str = setting("logs", doc="Log directory.")
    workspace_dir: str = setting("workspaces", doc="Workspace directory.")
    copy_data: bool = setting(True, doc="Copy data into the workspace.")
    exp_name: str = setting("run", doc="Experiment name.")
    exec: ExecConfig = field(default_factory=ExecConfig)
    generate_report: bool = setting(True, doc="Write a report at the end.")
    report: ReportConfig = field(default_factory=ReportConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    extra: dict[str, Any] = field(
        default_factory=dict, metadata={"doc": "Keys of the YAML file sci_ext does not type."}
    )

    def __post_init__(self) -> None:
        # Values TOML cannot hold were stored as markers (see .bfts_yaml); give the real ones.
        if self.extra:
            from .bfts_yaml import decode

            self.extra = {key: decode(value) for key, value in self.extra.items()}

    def to_yaml_dict(self) -> dict[str, Any]:
        """The settings as AI-Scientist-v2's nested YAML mapping: typed keys, then ``extra``.

        ``OmegaConf.create(get_config().bfts.to_yaml_dict())`` is what AI-Scientist-v2
        would load from the migrated file.
        """
        from .files import split_dotted
        from .schema import flatten_instance

        out: dict[str, Any] = {}

        def put(path: list[str], value: Any) -> None:
            node = out
            for part in path[:-1]:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
            node[path[-1]] = value

        for dotted, value in flatten_instance(dataclasses.replace(self, extra={})).items():
            put(dotted.split("."), value)
        for dotted, value in self.extra.items():
            put(split_dotted(dotted), value)
        return out


register_section("bfts", BftsConfig)
