"""`%sci_config` usage errors in an in-process IPython shell (one real-kernel case is in test_config_magic)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def ip() -> Iterator[Any]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "sci_ext")
    yield shell
    shell.run_line_magic("unload_ext", "sci_ext")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("cache.ttl_seconds=abc", "ConfigError: runtime override: cache.ttl_seconds: expected a number, got 'abc'"),
        ("cache.ttl_second=5", "did you mean cache.ttl_seconds?"),
        ("retry.max_attempts=0", "must be >= 1"),
        ("cahce", "unknown section 'cahce'"),
        ("--save system", "argument --save: invalid choice"),
        ("--bogus", "unrecognized arguments: --bogus"),
        ("--dry-run", "--dry-run and --to only go with --migrate"),
        ("a=1 rag", "mix of KEY=VALUE and lookups"),
        ("--save user", "nothing to save"),
        ("--migrate /nonexistent/bfts.yaml", "no such file"),
    ],
)
def test_bad_input_is_a_one_line_usage_error_and_the_shell_survives(ip, capsys, line, message):
    res = ip.run_cell(f"%sci_config {line}")
    assert isinstance(res.error_in_exec, UsageError), res.error_in_exec
    assert message in str(res.error_in_exec)
    assert "\n" not in str(res.error_in_exec)
    assert capsys.readouterr().err.startswith("UsageError: ")
    assert ip.run_cell("1 + 1").result == 2
