"""`jupyter sci config ...` as a user runs it: a subprocess, exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sci_ext.cli import main

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parents[1] / "data"


def sci(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sci_ext", *args], capture_output=True, text=True, env=full, cwd=cwd, timeout=60
    )


def test_show_get_and_json(sci_env):
    res = sci("config", "show", "rag")
    assert res.returncode == 0 and "rag.chunk_size" in res.stdout and "default" in res.stdout
    res = sci("config", "show", "--json", env={"SCI_EXT_RAG__TOP_K": "9"})
    data = json.loads(res.stdout)
    assert data["rag.top_k"] == {"value": 9, "type": "integer", "source": "env (SCI_EXT_RAG__TOP_K)"}
    assert sci("config", "get", "rag.similarity_threshold").stdout.strip() == "0.7"
    assert sci("config", "get", "rag.embedding_model").stdout.strip().startswith("sentence-transformers")


def test_set_writes_the_user_file_and_validates(sci_env):
    res = sci("config", "set", "cache.ttl_seconds=600", "rag.top_k=8")
    assert res.returncode == 0, res.stderr
    user = sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"
    assert "ttl_seconds = 600.0" in user.read_text()
    assert sci("config", "get", "rag.top_k").stdout.strip() == "8"
    res = sci("config", "set", "--project", "rag.top_k=10", cwd=sci_env["project"])
    assert res.returncode == 0 and (sci_env["project"] / "sci_ext.toml").exists()
    bad = sci("config", "set", "rag.top_k=zero")
    assert bad.returncode == 2 and "expected an integer" in bad.stderr and bad.stderr.count("\n") == 1
    assert "top_k = 8" in user.read_text()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("config", "get", "rag.nope"), 2, "no config key 'rag.nope'"),
        (("config", "get", "rag"), 2, "no config key 'rag'"),
        (("config", "show", "nosuch"), 2, "no config section or key"),
        (("config", "bogus"), 2, "invalid choice"),
        (("config", "set", "novalue"), 2, "expected KEY=VALUE"),
        (("config", "migrate", "missing.yaml"), 2, "no such file"),
        ((), 2, "required"),
    ],
)
def test_bad_usage_exits_2_with_one_line(sci_env, args, code, message):
    res = sci(*args)
    assert res.returncode == code, (res.stdout, res.stderr)
    assert message in res.stderr and res.stderr.strip().count("\n") == 0


def test_validate_exit_codes(sci_env):
    assert sci("config", "validate").returncode == 0
    (sci_env["project"] / "sci_ext.toml").write_text("[retry]\nmax_attempts = 'three'\n")
    res = sci("config", "validate", cwd=sci_env["project"])
    assert res.returncode == 1 and "sci_ext.toml line 2: retry.max_attempts: expected an integer" in res.stderr
    res = sci("config", "get", "rag.top_k", cwd=sci_env["project"])
    assert res.returncode == 1 and "ConfigError" in res.stderr


def test_migrate_dry_run_then_real(sci_env):
    project = sci_env["project"]
    shutil.copy(DATA / "bfts_config.yaml", project)
    res = sci("config", "migrate", "bfts_config.yaml", "--dry-run", cwd=project)
    assert res.returncode == 0 and "+[bfts.agent]" in res.stdout and not (project / "sci_ext.toml").exists()
    res = sci("config", "migrate", "bfts_config.yaml", cwd=project)
    assert res.returncode == 0 and "migrated into" in res.stdout
    res = sci("config", "migrate", "bfts_config.yaml", cwd=project)
    assert "nothing to migrate" in res.stdout
    assert sci("config", "get", "bfts.agent.stages.stage1_max_iters", cwd=project).stdout.strip() == "20"
    broken = project / "broken.yaml"
    broken.write_text("agent:\n  type: serial\n")
    res = sci("config", "migrate", "broken.yaml", "--to", "other.toml", cwd=project)
    assert res.returncode == 1 and "line 2: agent.type" in res.stderr


def test_in_process_main_and_version(sci_env, capsys):
    assert main(["--version"]) == 0
    assert "sci_ext" in capsys.readouterr().out
    assert main(["config", "get", "rag.top_k"], prog="sci-ext") == 0
    assert capsys.readouterr().out.strip() == "5"
    assert main(["config", "validate"]) == 0
    assert main(["config", "show", "retry"]) == 0
    assert "retry.max_attempts" in capsys.readouterr().out


def test_console_scripts_are_declared():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"jupyter-sci": "sci_ext.cli:run", "sci-ext": "sci_ext.cli:run"}
    exe = shutil.which("jupyter-sci", path=str(Path(sys.executable).parent))
    if exe is not None:  # installed (the README's commands install it)
        res = subprocess.run(
            [exe, "config", "get", "rag.chunk_size"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert res.stdout.strip() == "1000"
