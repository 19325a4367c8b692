"""Review 2026-12-b R5: a `--token` value is overwritten in /proc/PID/cmdline as the command line starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")

CHILD = """
import sys
from sci_ext.cli.argv_scrub import scrub_argv_option
assert scrub_argv_option("--token")
sys.stdout.write(open("/proc/self/cmdline", "rb").read().decode())
"""


@pytest.mark.parametrize("form", [["--token", "s3cr3t-value-xyz"], ["--token=s3cr3t-value-xyz"]])
def test_token_value_is_scrubbed_from_cmdline(form: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, "--url", "http://x/", *form, "--other"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    args = out.split("\0")
    assert "s3cr3t-value-xyz" not in out
    assert "--other" in args and "http://x/" in args  # the rest is untouched
    assert ("*" * len("s3cr3t-value-xyz")) in out
