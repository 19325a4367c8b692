"""A ``%%cached`` cell that binds an SDK client (``client, model = create_client(...)``) is cached and rebuilt.

In-process IPython with the extension loaded; the disk entry's bytes are searched for the credential.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sci_ext.testing import FakeLLMServer

SECRET = "sk-SECRET-cached-client-4242"


@pytest.fixture
def ip(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from IPython.testing.globalipapp import get_ipython as start_ipython

    from sci_ext.core.cache.layered import get_memory_store
    from sci_ext.kernel import KernelState

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    shell = start_ipython()
    if not KernelState.get(shell).loaded:
        shell.run_line_magic("load_ext", "sci_ext")
    get_memory_store().clear()
    keep = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - keep:
        del shell.user_ns[name]


def _run(ip: Any, code: str) -> Any:
    result = ip.run_cell(code)
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result


def test_cell_binding_a_client_is_cached_and_rebuilt(ip: Any) -> None:
    from sci_ext.core.cache.layered import get_memory_store
    from sci_ext.core.config import get_config
    from sci_ext.kernel.cached_cell import SESSION

    with FakeLLMServer() as server:
        ip.user_ns["URL"] = server.openai_url
        cell = (
            "%%cached make_client\n"
            "import openai\n"
            "client, model = openai.OpenAI(base_url=URL, max_retries=1, timeout=9.0), 'gpt-4o-mini'\n"
        )
        _run(ip, cell)
        assert SESSION.last.status == "miss", SESSION.last
        first = ip.user_ns["client"]
        del ip.user_ns["client"]
        get_memory_store().clear()  # from the disk entry, not the live object
        _run(ip, cell)
        assert SESSION.last.status == "hit", SESSION.last
        client = ip.user_ns["client"]
        assert client is not first and type(client) is type(first)
        assert (client.max_retries, client.timeout, str(client.base_url)) == (1, 9.0, str(first.base_url))
        reply = client.chat.completions.create(model=ip.user_ns["model"], messages=[{"role": "user", "content": "x"}])
        assert reply.usage.prompt_tokens == server.usage["input"]
        # A cell that uses the client as an input is keyed by the client's settings: the rebuilt client hits.
        ask = (
            "%%cached ask\n"
            "answer = client.chat.completions.create(model=model, messages=[{'role': 'user', 'content': 'x'}])"
            ".choices[0].message.content\n"
        )
        ip.user_ns["client"] = first
        _run(ip, "%%cached --force ask\n" + ask.split("\n", 1)[1])
        sent = len(server.requests)
        ip.user_ns["client"] = client  # the rebuilt one
        _run(ip, ask)
        assert SESSION.last.status == "hit", SESSION.last
        assert len(server.requests) == sent
    entries = [p for p in Path(get_config().cache.dir).rglob("*") if p.is_file()]
    assert entries, "no disk entry written"
    assert not any(SECRET.encode() in p.read_bytes() for p in entries)  # the credential is never stored


def test_a_consumed_stream_is_stored_as_a_finished_stream_and_an_open_one_is_not(ip: Any) -> None:
    """openai_stream_completions: a cell that streams a completion and prints every chunk ran (and
    paid) every time: ``response`` holds a live HTTP response ("cannot pickle RLock"). Once the
    cell has read the stream to its end, what ``response`` still does is finish at once when iterated
    and report its HTTP status and headers: stored as that, with its client by its settings (no
    credential). The oracle is the plain cell's ``response`` after the same loop."""
    from sci_ext.core.cache.layered import get_memory_store
    from sci_ext.core.config import get_config
    from sci_ext.kernel.cellcache.session import SESSION

    body = (
        "import openai\n"
        "client = openai.OpenAI(base_url=URL, max_retries=0)\n"
        "response = client.chat.completions.create(model='gpt-4o-mini', stream=True,\n"
        "    messages=[{'role': 'user', 'content': 'x'}])\n"
        "for chunk in response:\n"
        "    print(chunk.choices[0].delta.content if chunk.choices else '')\n"
    )
    probe = (
        "probe = (type(response).__name__, list(response), response.response.status_code,\n"
        "    response.response.headers.get('content-type'), response.response.is_closed)"
    )
    with FakeLLMServer() as server:
        ip.user_ns["URL"] = server.openai_url
        _run(ip, body)
        _run(ip, probe)
        plain = ip.user_ns["probe"]
        assert plain[1] == [] and plain[2] == 200
        cell = "%%cached stream\n" + body
        _run(ip, cell)
        assert SESSION.last.status == "miss", SESSION.last
        sent = len(server.requests)
        del ip.user_ns["response"]
        get_memory_store().clear()  # from the disk entry
        _run(ip, cell)
        assert SESSION.last.status == "hit", SESSION.last
        assert len(server.requests) == sent
        _run(ip, probe)
        assert ip.user_ns["probe"] == plain
        # A stream the cell did not read to its end still holds data on the connection: not stored.
        _run(ip, "%%cached open_stream\n" + body.split("for chunk")[0] + "first = next(iter(response))\n")
        assert SESSION.last.status == "uncached", SESSION.last
    entries = [p for p in Path(get_config().cache.dir).rglob("*") if p.is_file()]
    assert not any(SECRET.encode() in p.read_bytes() for p in entries)  # the credential is never stored
