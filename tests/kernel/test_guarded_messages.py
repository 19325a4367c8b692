"""What a failing ``%%guarded`` cell shows: the user's frames, accurate counts, why nothing was retried.

Real kernel, real tracebacks as the notebook receives them (the ``error`` message's
``traceback`` lines, colours stripped).  The oracle for "the user's frames" is the cell
itself and a helper module the cell imports: every frame shown is one of those.
"""

from __future__ import annotations

import re

import pytest
from kernel_harness import KernelSession

MACHINERY = ("tenacity", "concurrent/futures", "sci_ext/core/resilience", "sci_ext/kernel", "run_cell_magic")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def shown(res) -> str:  # type: ignore[no-untyped-def]
    assert res.error is not None, res.stdout + res.stderr
    return "\n".join(ANSI.sub("", line) for line in res.error["traceback"])


def frames(text: str) -> list[str]:
    """The frame headers of a formatted traceback ("Cell In[3], line 2", "File /x.py:4, in f()")."""
    return [line for line in text.splitlines() if line.startswith(("Cell In[", "File "))]


@pytest.fixture(scope="module")
def guarded_kernel(tmp_path_factory: pytest.TempPathFactory) -> KernelSession:
    import os

    from kernel_harness import kernel_env

    home = tmp_path_factory.mktemp("guarded-messages")
    (home / "userlib.py").write_text("def fetch(url):\n    raise ConnectionError(f'{url} is down')\n")
    env = kernel_env({**os.environ, "XDG_STATE_HOME": str(home), "XDG_CACHE_HOME": str(home),
                      "XDG_CONFIG_HOME": str(home)})  # fmt: skip
    session = KernelSession(env, home)
    yield session
    session.close()


def test_breaker_opening_during_retries_shows_user_frames_and_true_counts(guarded_kernel: KernelSession) -> None:
    res = guarded_kernel.run(
        "%%guarded fetch --retries 5 --wait-initial 0 --breaker msg-b1\n"
        "import userlib\n"
        "data = userlib.fetch('http://example.invalid')"
    )
    text = shown(res)
    for machinery in MACHINERY:
        assert machinery not in text, (machinery, text)
    heads = frames(text)
    assert heads and all(h.startswith("Cell In[") or "userlib.py" in h for h in heads), heads
    assert heads[0].startswith("Cell In[") and heads[0].endswith("line 3"), heads  # the user's line, not line 1
    assert "ConnectionError: http://example.invalid is down" in text
    assert len(text.splitlines()) < 30, text  # was ~80 lines
    # 5 attempts ran and failed; the 6th was refused by the breaker, not run
    assert "5 attempt(s) failed, then attempt 6 was refused: circuit breaker 'msg-b1' is open" in res.stderr
    assert "5 attempts failed, then the open breaker refused attempt 6" in text
    assert "gave up after 6" not in res.stderr + text


def test_permanent_failure_says_not_retried_and_why(guarded_kernel: KernelSession) -> None:
    res = guarded_kernel.run("%%guarded load --retries 3 --wait-initial 0\nopen('/nonexistent/data.csv')")
    assert "guarded load: FileNotFoundError is not transient: not retried ([Errno 2]" in res.stderr, res.stderr
    assert "gave up" not in res.stderr and "[unknown]" not in res.stderr
    heads = frames(shown(res))
    assert len(heads) == 1 and heads[0].endswith("line 2"), heads

    res = guarded_kernel.run("%%guarded load --on TimeoutError --wait-initial 0\nraise ConnectionError('x')")
    assert "ConnectionError is not in --on TimeoutError: not retried (x)" in res.stderr, res.stderr


def test_retries_exhausted_shows_the_cell_frame_only(guarded_kernel: KernelSession) -> None:
    res = guarded_kernel.run("%%guarded slow --retries 2 --wait-initial 0\nx = 1\nraise TimeoutError('slow')")
    text = shown(res)
    assert "gave up after 3 attempt(s): TimeoutError: slow [timeout]" in res.stderr
    assert [h.split(",")[1].strip() for h in frames(text)] == ["line 3"], text
    for machinery in MACHINERY:
        assert machinery not in text, (machinery, text)


def test_other_errors_keep_ipythons_traceback(guarded_kernel: KernelSession) -> None:
    """Only what %%guarded marked is trimmed: a plain cell's traceback is IPython's as before."""
    res = guarded_kernel.run("def f():\n    raise KeyError('k')\nf()")
    text = shown(res)
    assert len(frames(text)) == 2 and "KeyError" in text


def test_the_same_cell_run_again_names_its_new_cell_number(guarded_kernel: KernelSession) -> None:
    """Run again, a cell reuses its compiled code (same source) but its traceback names the new In[N]."""
    cell = "%%guarded again --retries 0\ny = 2\nraise ValueError(f'again {y}')\n"
    numbers = []
    for _ in range(2):
        # IPython 9 counts the running cell first: inside cell N, execution_count is N + 1.
        number = int(guarded_kernel.run("get_ipython().execution_count").result["text/plain"])
        text = shown(guarded_kernel.run(cell))
        assert frames(text) == [f"Cell In[{number}], line 3"], text
        assert "raise ValueError(f'again {y}')" in text and "ValueError: again 2" in text
        numbers.append(number)
    assert numbers[0] != numbers[1]
