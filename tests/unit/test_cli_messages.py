"""What a new user reads from ``jupyter sci``: suggestions, no machinery words, next steps, help text.

Runs the real command line in process (``sci_ext.cli.main``) against real files in the
test's own XDG directories.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sci_ext.cli import build_parser, main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), prog="jupyter sci")
    out, err = capsys.readouterr()
    return code, out, err


def user_file(sci_env: dict[str, Path]) -> Path:
    path = sci_env["XDG_CONFIG_HOME"] / "sci_ext" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("config", "get", "rag.topk"), "no config key 'rag.topk' (did you mean rag.top_k?)"),
        (("config", "show", "rag.topk"), "no config section or key 'rag.topk' (did you mean rag.top_k?)"),
        (("config", "show", "retyr"), "(did you mean retry?)"),
        (("config", "set", "rag.topk=3"), "unknown key 'rag.topk' (did you mean rag.top_k?)"),
    ],
)
def test_typos_get_a_suggestion(capsys, argv: tuple[str, ...], expected: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and expected in err, err


def test_set_errors_do_not_say_runtime_override(capsys) -> None:
    for assignment in ("rag.top_k=abc", "rag.topk=3", "retry.max_attempts=-1"):
        code, _, err = run(capsys, "config", "set", assignment)
        assert code == 2 and err and "runtime" not in err and "override" not in err, err


def test_show_works_while_the_user_file_is_invalid(capsys, sci_env) -> None:
    user_file(sci_env).write_text('[rag]\ntop_k = 8\nbogus = 1\n[retry]\nmax_attempts = "x"\n')
    code, out, err = run(capsys, "config", "show", "rag")
    assert code == 0 and "rag.top_k" in out
    assert "line 3: unknown key 'rag.bogus'" in err and "line 5: retry.max_attempts" in err, err
    assert "ignored" in err
    code, _, err = run(capsys, "config", "get", "rag.top_k")  # get still refuses to guess: says why
    assert code == 1 and "line 3" in err


def test_a_refused_first_deploy_leaves_no_slot_and_no_backup(capsys, sci_env, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "deploy", "--status")
    assert code == 0 and "nothing deployed yet" in out and "jupyter sci deploy NEW.toml" in out
    bad = tmp_path / "new.toml"
    bad.write_text("[rag]\ntopk = 3\n")
    code, _, err = run(capsys, "deploy", str(bad), "--no-candidate")
    assert code == 1 and "unknown key 'rag.topk'" in err, err
    deploy_dirs = [p for p in sci_env["XDG_STATE_HOME"].rglob("*") if p.is_file()]
    assert not [p for p in deploy_dirs if p.suffix == ".deployed" or p.name in ("blue.toml", "green.toml")], deploy_dirs
    code, out, _ = run(capsys, "deploy", "--status")
    assert "nothing deployed yet" in out and "empty" in out
    good = tmp_path / "good.toml"
    good.write_text("[rag]\ntop_k = 3\n")
    code, out, err = run(capsys, "deploy", str(good), "--no-candidate")
    assert code == 0, err
    code, out, _ = run(capsys, "deploy", "--status")
    assert "nothing deployed yet" not in out and "(active)" in out
    assert len([p for p in sci_env["XDG_STATE_HOME"].rglob("*.deployed")]) == 1


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append((name, child))
                found.extend(_subparsers(child))
    return found


def test_every_subcommand_help_has_a_description() -> None:
    commands = _subparsers(build_parser())
    assert len(commands) > 15
    missing = [name for name, parser in commands if not parser.description]
    assert not missing, missing


def test_health_help_gives_exit_codes(capsys) -> None:
    code, out, _ = run(capsys, "health", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "exit status: 0" in text and "1 a check failing" in text and "2 bad usage" in text
