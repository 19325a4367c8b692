"""In a kernel (in-process IPython, extension loaded): bound errors name the magics; %sci_llm shows attempts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sci_ext.testing import FakeLLMServer


@pytest.fixture
def ip() -> Iterator[Any]:
    from IPython.testing.globalipapp import get_ipython as start_ipython

    from sci_ext.kernel import KernelState

    shell = start_ipython()
    if not KernelState.get(shell).loaded:
        shell.run_line_magic("load_ext", "sci_ext")
    shell.run_line_magic("sci_llm", "--reset")
    keep = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - keep:
        if not name.startswith("_"):  # IPython's output history (_, __, _N) belongs to the shell
            del shell.user_ns[name]
    shell.run_line_magic("sci_config", "llm.max_attempts=20")
    shell.run_line_magic("sci_llm", "--reset")


def test_bound_error_names_the_magic_and_sci_llm_shows_the_attempts(
    ip: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeLLMServer() as server:
        ip.user_ns["URL"] = server.openai_url
        server.served["gpt-4o-mini"] = "gpt-4o-mini-2024-07-18"
        ip.run_line_magic("sci_config", "llm.max_attempts=3")
        result = ip.run_cell(
            "import openai\n"
            "client = openai.OpenAI(base_url=URL, api_key='sk', max_retries=1)\n"
            "client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'x'}])\n"
        )
        assert result.error_in_exec is None
        server.fail_always = 429
        result = ip.run_cell(
            "for attempt in range(10):\n"
            "    try:\n"
            "        client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'x'}])\n"
            "    except openai.RateLimitError:\n"
            "        pass  # the caller's own retry loop\n"
        )
        error = result.error_in_exec
        assert type(error).__name__ == "RetryBoundReached", error
        assert "%sci_config llm.max_attempts=6" in str(error) and "3 failed attempts" in str(error)
        assert "SCI_EXT_" not in str(error)
        assert len(server.requests) == 1 + 3
        capsys.readouterr()
        ip.run_line_magic("sci_llm", "--model gpt-4o-mini")
        out = capsys.readouterr().out
    assert "attempts" in out and "gpt-4o-mini-2024-07-18 (asked: gpt-4o-mini)" in out
    assert "4 (3 429)" in out  # 3 calls, 4 attempts in all, 3 of them rate-limited
