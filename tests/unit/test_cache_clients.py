"""SDK and HTTP clients in cache entries: stored as settings, rebuilt on a hit, no credential in the bytes."""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
import pytest
from lazy_module import LazyModule

from sci_ext.core.cache.clients import ClientSpec, credential_header, spec_of
from sci_ext.core.cache.serialize import open_buffer, pack, register_reducer, unpack
from sci_ext.testing import FakeLLMServer

anthropic = LazyModule("anthropic")  # imported by the first test that uses it
openai = LazyModule("openai")

SECRETS = ("sk-live-SECRET-openai-0123456789", "sk-ant-SECRET-anthropic-987654", "AKIASECRETACCESSKEY",
           "aws-SECRET-secret-key", "vertex-SECRET-token", "azure-SECRET-key", "Bearer SECRET-header")  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRETS[0])
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRETS[1])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", SECRETS[2])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRETS[3])
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRETS[5])


def _clients(url: str) -> dict[str, Any]:
    return {
        "openai": openai.OpenAI(base_url=f"{url}/v1", timeout=12.5, max_retries=5,
                                default_headers={"X-Team": "lab", "Authorization": SECRETS[6]}),
        "openai_explicit_key": openai.OpenAI(api_key=SECRETS[0], base_url=f"{url}/v1"),
        "async_openai": openai.AsyncOpenAI(base_url=f"{url}/v1"),
        "anthropic": anthropic.Anthropic(base_url=url, max_retries=1,
                                         timeout=httpx2.Timeout(30.0, connect=3.0)),
        "bedrock": anthropic.AnthropicBedrock(aws_region="us-west-2", base_url=url),
        "vertex": anthropic.AnthropicVertex(region="us-east5", project_id="proj-1", access_token=SECRETS[4]),
        "azure": openai.AzureOpenAI(azure_endpoint=url, azure_deployment="dep", api_version="2024-10-21"),
        "httpx": httpx.Client(base_url=url, timeout=7.0, headers={"X-Api-Key": SECRETS[6], "Accept": "json"}),
        "httpx2": httpx2.Client(base_url=url, follow_redirects=True),
    }  # fmt: skip


def test_clients_round_trip_as_settings_without_credentials(env: None) -> None:
    url = "http://127.0.0.1:9"
    clients = _clients(url)
    cell_namespace = {"client": clients["bedrock"], "model": "anthropic.claude-3-5-sonnet-20241022-v2:0",
                      "clients": clients}  # fmt: skip
    entry = pack(cell_namespace).to_bytes()
    for secret in SECRETS:  # not the key, not the AWS credentials, not a credential header
        assert secret.encode() not in entry, secret
    assert b"SECRET" not in entry  # nor any part of one
    back, _ = unpack(open_buffer(entry))
    assert back["model"] == cell_namespace["model"] and back["client"] is not clients["bedrock"]
    for name, original in clients.items():
        rebuilt = back["clients"][name]
        assert type(rebuilt) is type(original), name
        assert str(rebuilt.base_url) == str(original.base_url), name
        assert spec_of(rebuilt) == spec_of(original), name
    assert back["clients"]["openai"].max_retries == 5 and back["clients"]["openai"].timeout == 12.5
    assert back["clients"]["openai"].api_key == SECRETS[0]  # from the environment, as on the first run
    assert "Authorization" not in back["clients"]["openai"]._custom_headers
    assert back["clients"]["anthropic"].timeout.connect == 3.0
    assert back["clients"]["bedrock"].aws_region == "us-west-2"
    assert back["clients"]["vertex"].project_id == "proj-1" and back["clients"]["vertex"].access_token is None
    assert (
        back["clients"]["httpx"].headers.get("accept") == "json" and "x-api-key" not in back["clients"]["httpx"].headers
    )
    assert back["clients"]["httpx2"].follow_redirects is True


def test_a_rebuilt_client_works_against_the_server(env: None) -> None:
    with FakeLLMServer() as server:
        client = openai.OpenAI(base_url=server.openai_url, max_retries=0)
        back, _ = unpack(open_buffer(pack(client).to_bytes()))
        reply = back.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        assert reply.usage.prompt_tokens == server.usage["input"]


def test_a_missing_credential_on_rebuild_says_which(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from sci_ext.core.cache.serialize import CorruptEntry

    entry = pack(openai.OpenAI(base_url="http://127.0.0.1:9/v1")).to_bytes()
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(CorruptEntry, match="OPENAI_API_KEY"):
        unpack(open_buffer(entry))


def test_other_values_and_hooks() -> None:
    assert spec_of(object()) is None and spec_of({"a": 1}) is None
    assert credential_header("X-Api-Key") and credential_header("authorization") and not credential_header("Accept")

    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

    remove = register_reducer(lambda obj: (int, (41,)) if isinstance(obj, Point) else NotImplemented, (__name__,))
    try:
        assert unpack(open_buffer(pack([Point(1), 2]).to_bytes()))[0] == [41, 2]
    finally:
        remove()
    assert isinstance(ClientSpec("m", "n", None, None, None), ClientSpec)


def test_a_client_input_is_keyed_by_its_settings_not_its_credential(env: None) -> None:
    from sci_ext.core.cache.keys import ValueHasher

    def key(value: Any) -> str:
        hasher = ValueHasher()
        hasher.update(value)
        return str(hasher.digest())

    a = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-SECRET-one")
    b = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-SECRET-two")
    c = openai.OpenAI(base_url="http://127.0.0.1:8/v1", api_key="sk-SECRET-one")
    rebuilt, _ = unpack(open_buffer(pack(a).to_bytes()))
    assert key(a) == key(b) == key(rebuilt)  # the same service and settings: the same key, whatever the key
    assert key(a) != key(c) and key(a) != key(anthropic.Anthropic(base_url="http://127.0.0.1:9/v1"))
    assert key({"client": a, "model": "m"}) == key({"client": rebuilt, "model": "m"})
