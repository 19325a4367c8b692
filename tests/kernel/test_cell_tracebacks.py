"""Tracebacks of ``%%cached`` and ``%%guarded`` cells name the user's cell and its lines as typed."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.module_kernel]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _traceback(result) -> str:
    assert result.error is not None, "the cell should have failed"
    return ANSI.sub("", "\n".join(result.error["traceback"]))


@pytest.mark.parametrize("magic", ["%%cached", "%%guarded --retries 0"])
def test_traceback_names_cell_and_typed_line(kernel, magic):
    kernel.run("x = 1").check()
    # The next cell's number (IPython counts a cell before it runs it).
    number = int(kernel.run("get_ipython().execution_count").check().result["text/plain"])
    failed = kernel.run(f"{magic}\na = 1\nb = 2\nc = 1 / 0\n")
    text = _traceback(failed)
    # The failing frame is this cell, line 4 as typed (the magic line is line 1), not In[N+1].
    assert f"In[{number}], line 4" in text, text
    assert f"In[{number + 1}]" not in text
    assert re.search(r"----> 4 c = 1 / 0", text), text


@pytest.mark.parametrize("magic", ["%%cached", "%%guarded --retries 0"])
def test_traceback_shows_the_users_frames_only(kernel, magic):
    kernel.run("def helper():\n    return 1 / 0").check()
    text = _traceback(kernel.run(f"{magic}\nvalue = helper()\n"))
    assert "run_cell_magic" not in text, text  # no leading frame of the magic's dispatch
    assert "sci_ext" not in text and "tenacity" not in text, text  # no machinery frames
    assert "value = helper()" in text and "return 1 / 0" in text, text  # the user's two frames
    assert "ZeroDivisionError" in text
