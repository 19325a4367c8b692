"""Retries are not silent: one WARNING per retry on ``sci_ext.retry``, and a one-line
stderr notice when the program configured no logging (stamina's default, kept although
``import sci_ext`` gives its logger a ``NullHandler``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from kernel_harness import REPO

_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    setup = sys.argv[1]
    if setup == "basic":
        logging.basicConfig(level=logging.INFO, format="LOG %(levelname)s %(name)s: %(message)s")
    elif setup == "quiet":
        logging.getLogger("sci_ext.retry").setLevel(logging.ERROR)
    from sci_ext.core import retry_with_backoff
    from sci_ext.core.resilience import RetryPolicy
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("connection reset by peer")
        return "ok"

    if setup == "no-notice":
        print(RetryPolicy(3, initial_wait=0.01, jitter=0, notice=False, name="fetch").call(flaky))
    else:
        print(retry_with_backoff(max_attempts=3, initial_wait=0.01, jitter=0, name="fetch")(flaky)())
    """
)


def _script(setup: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, setup], capture_output=True, text=True, env=env, check=True, timeout=60
    )


def test_a_script_without_logging_shows_each_retry_on_stderr():
    done = _script("none")
    assert done.stdout.strip() == "ok"
    lines = done.stderr.splitlines()
    assert lines == [
        "sci_ext.retry: retrying fetch after attempt 1/3 failed with ConnectionResetError: "
        "connection reset by peer; waiting 0.01 s",
        "sci_ext.retry: retrying fetch after attempt 2/3 failed with ConnectionResetError: "
        "connection reset by peer; waiting 0.02 s",
    ]


def test_configured_logging_gets_the_records_once_and_no_extra_notice():
    done = _script("basic")
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert all(line.startswith("LOG WARNING sci_ext.retry: retrying fetch after attempt") for line in lines)


def test_the_logger_level_or_notice_false_silences_it():
    assert _script("quiet").stderr == ""
    assert _script("no-notice").stderr == ""


def test_in_a_notebook_the_library_form_shows_retries_and_guarded_prints_no_duplicate(kernel):
    res = kernel.run(
        textwrap.dedent(
            """
            from sci_ext.core import retry_with_backoff
            calls = []
            @retry_with_backoff(max_attempts=2, initial_wait=0.01, jitter=0, name="fetch")
            def fetch():
                calls.append(1)
                if len(calls) < 2:
                    raise ConnectionResetError("reset")
                return "ok"
            print(fetch())
            """
        )
    ).check()
    assert res.stdout.strip() == "ok"
    assert "sci_ext.retry: retrying fetch after attempt 1/2 failed with ConnectionResetError: reset" in res.stderr
    res = kernel.run(
        "%%guarded ask --retries 1 --wait-initial 0.01\n"
        "tries = globals().get('tries', 0) + 1\n"
        "if tries < 2:\n"
        "    raise ConnectionResetError('reset')\n"
        "print('answered')\n"
    ).check()
    assert "answered" in res.stdout
    assert "guarded ask: attempt 1/2 failed with ConnectionResetError" in res.stderr
    assert "sci_ext.retry" not in res.stderr  # the cell's own line is enough
