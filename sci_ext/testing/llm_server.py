"""A local stand-in for the OpenAI and Anthropic APIs, for offline demos, docs and tests.

Not an LLM: it answers every request with a fixed reply and fixed token usage, on a free
loopback port, in the wire formats of the real APIs, so the official ``openai`` and
``anthropic`` SDKs talk to it unchanged and every number sci_ext reports is reproducible.
The notebooks, the docs and sci_ext's own tests use it; it needs only the standard library
and is never imported by ``import sci_ext``::

    from sci_ext.testing import FakeLLMServer

    with FakeLLMServer() as server:
        client = openai.OpenAI(base_url=server.openai_url, api_key="sk-demo")
        anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-ant-demo")

Endpoints:

* ``POST /v1/chat/completions`` - plain, or SSE chunks with ``"stream": true`` (a final
  usage chunk only with ``stream_options.include_usage``, as the real API);
* ``POST /v1/responses`` - plain, or SSE events ending in ``response.completed`` with usage;
* ``POST /v1/embeddings``;
* ``POST /v1/messages`` - plain, or SSE ``message_start`` ... ``message_delta`` (usage) ... ``message_stop``;
* ``POST /model/{model}/invoke`` (and ``invoke-with-response-stream``, AWS event-stream frames) - Bedrock's
  (``anthropic.AnthropicBedrock(base_url=server.bedrock_url)``), and
  ``POST .../publishers/anthropic/models/{model}:rawPredict`` - Vertex's: anthropic messages.

``server.served`` maps a requested model to the one the response names (the real APIs answer
``gpt-4o-mini`` with ``gpt-4o-mini-2024-07-18``); ``server.usage_override`` replaces the usage
block as sent (``"absent"`` leaves it out, a dict is sent as it is: malformed usage);
``server.fail_always = 429`` answers every request with that status until set back to 0;
``server.cut_streams = True`` drops the connection after the first two events of a stream.

Usage fields are the ones the real APIs send, from :attr:`FakeLLMServer.usage`.
``server.fail(429, 500)`` makes the next requests answer those statuses (a 429 with
``Retry-After: 0``).  ``server.requests`` lists every request it saw (path, model,
stream) and ``server.reported`` the usage it answered with.  ``python -m
sci_ext.testing`` runs one in the foreground and prints its URLs.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["DEFAULT_USAGE", "FakeLLMServer"]

# The token counts every reply reports unless ``FakeLLMServer(usage=...)`` says otherwise.
DEFAULT_USAGE = {"input": 1200, "cached_input": 200, "cache_write": 100, "output": 300, "reasoning": 50}


def openai_chat_usage(u: dict[str, int]) -> dict[str, Any]:
    """The ``usage`` object of an openai chat completion for the token counts ``u``."""
    return {
        "prompt_tokens": u["input"],
        "completion_tokens": u["output"],
        "total_tokens": u["input"] + u["output"],
        "prompt_tokens_details": {"cached_tokens": u["cached_input"], "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u["reasoning"],
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_responses_usage(u: dict[str, int]) -> dict[str, Any]:
    """The ``usage`` object of an openai Responses API reply for the token counts ``u``."""
    return {
        "input_tokens": u["input"],
        "input_tokens_details": {"cached_tokens": u["cached_input"]},
        "output_tokens": u["output"],
        "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
        "total_tokens": u["input"] + u["output"],
    }


def anthropic_usage(u: dict[str, int]) -> dict[str, Any]:
    """The ``usage`` object of an anthropic message for the token counts ``u``."""
    # anthropic's input_tokens leaves out the tokens read from and written to the cache
    return {
        "input_tokens": u["input"] - u["cached_input"] - u["cache_write"],
        "cache_read_input_tokens": u["cached_input"],
        "cache_creation_input_tokens": u["cache_write"],
        "output_tokens": u["output"],
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        model = body.get("model", "")
        stream = bool(body.get("stream"))
        self.aws_framing = False
        if path.startswith("/model/") and (path.endswith("/invoke") or path.endswith("/invoke-with-response-stream")):
            model = path.split("/")[2]  # Bedrock: the model is in the path, the body has none
            stream = path.endswith("/invoke-with-response-stream")
            self.aws_framing = stream  # Bedrock streams are AWS event-stream frames, not SSE
            path = "/v1/messages"
        elif ":rawPredict" in path or ":streamRawPredict" in path:
            model = path.rsplit("/", 1)[-1].split(":", 1)[0]  # Vertex
            stream = stream or ":streamRawPredict" in path
            path = "/v1/messages"
        status = owner.take_failure()
        owner.seen(path, model, stream, status)
        model = owner.served.get(model, model)
        if status:
            self._json(status, {"error": {"type": "rate_limit_error" if status == 429 else "api_error",
                                          "message": f"fake failure {status}"}}, retry_after=status == 429)  # fmt: skip
            return
        u = dict(owner.usage)
        if path.endswith("/chat/completions"):
            self._chat(model, body, u, stream)
        elif path.endswith("/responses"):
            self._responses(model, u, stream)
        elif path.endswith("/embeddings"):
            u = {"input": u["input"], "output": 0, "cached_input": 0, "cache_write": 0, "reasoning": 0}
            owner.report(u)
            self._json(200, {"object": "list", "model": model,
                             "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                             "usage": {"prompt_tokens": u["input"], "total_tokens": u["input"]}})  # fmt: skip
        elif path.endswith("/messages"):
            self._messages(model, u, stream)
        else:
            self._json(404, {"error": {"message": f"no route {path}"}})

    # -- openai -------------------------------------------------------------
    def _chat(self, model: str, body: dict[str, Any], u: dict[str, int], stream: bool) -> None:
        owner = self.server.owner
        created = int(time.time())
        if not stream:
            owner.report(u)
            self._json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": "Hello from the fake server."}}],
                "usage": openai_chat_usage(u),
            })  # fmt: skip
            return
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        owner.report(u if include else None)
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model}
        events = []
        for i, word in enumerate(["Hello", " from", " the", " stream."]):
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            if include:
                chunk["usage"] = None
            events.append((None, chunk))
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        if include:
            last["usage"] = None
        events.append((None, last))
        if include:
            events.append((None, {**base, "choices": [], "usage": openai_chat_usage(u)}))
        self._sse(events, done=True)

    def _responses(self, model: str, u: dict[str, int], stream: bool) -> None:
        self.server.owner.report(u)
        response = {
            "id": "resp_fake", "object": "response", "created_at": int(time.time()), "model": model,
            "status": "completed", "output": [{"type": "message", "id": "msg_fake", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": "Hi.", "annotations": []}]}],
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "usage": openai_responses_usage(u),
        }  # fmt: skip
        if not stream:
            self._json(200, response)
            return
        pending = {**response, "status": "in_progress", "output": [], "usage": None}
        events = [
            ("response.created", {"type": "response.created", "sequence_number": 0, "response": pending}),
            ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1,
             "item_id": "msg_fake", "output_index": 0, "content_index": 0, "delta": "Hi.", "logprobs": []}),
            ("response.completed", {"type": "response.completed", "sequence_number": 2, "response": response}),
        ]  # fmt: skip
        self._sse(events, done=False)

    # -- anthropic ----------------------------------------------------------
    def _messages(self, model: str, u: dict[str, int], stream: bool) -> None:
        self.server.owner.report(u)
        usage = anthropic_usage(u)
        message = {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "Hello from the fake server."}],
            "stop_reason": "end_turn", "stop_sequence": None, "usage": usage,
        }  # fmt: skip
        if not stream:
            self._json(200, message)
            return
        start_usage = {**usage, "output_tokens": 1}
        events = [
            ("message_start", {"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                                     "usage": start_usage}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "Hello."}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": usage["output_tokens"]}}),
            ("message_stop", {"type": "message_stop"}),
        ]  # fmt: skip
        self._sse(events, done=False)

    # -- wire -----------------------------------------------------------------
    aws_framing = False

    def _aws_events(self, events: Sequence[object]) -> None:
        frames = [_aws_frame(data) for data in events]
        raw = b"".join(frames)
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.server.owner.cut_streams:
            self.wfile.write(b"".join(frames[:2]))
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(raw)

    def _json(self, status: int, data: dict[str, Any], retry_after: bool = False) -> None:
        override = self.server.owner.usage_override
        if status == 200 and override is not None and "usage" in data:
            if override == "absent":
                del data["usage"]
            else:
                data["usage"] = override
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        if retry_after:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(raw)

    def _sse(self, events: Sequence[tuple[str | None, object]], done: bool) -> None:
        if self.aws_framing:
            self._aws_events([data for _, data in events])
            return
        parts = []
        for name, data in events:
            head = f"event: {name}\n" if name else ""
            parts.append(f"{head}data: {json.dumps(data)}\n\n")
        if done:
            parts.append("data: [DONE]\n\n")
        raw = "".join(parts).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.server.owner.cut_streams:  # the connection drops in the middle of the stream
            first = "".join(parts[:2]).encode()
            self.wfile.write(first)
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(raw)


def _aws_frame(data: object) -> bytes:
    """One AWS event-stream message carrying ``data`` as Bedrock does (a ``chunk`` of base64 JSON bytes)."""
    import base64
    import struct
    import zlib

    payload = json.dumps({"bytes": base64.b64encode(json.dumps(data).encode()).decode()}).encode()
    headers = b""
    for name, value in ((":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")):
        n, v = name.encode(), value.encode()
        headers += bytes([len(n)]) + n + bytes([7]) + struct.pack(">H", len(v)) + v  # 7: a string header
    prelude = struct.pack(">II", 12 + len(headers) + len(payload) + 4, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeLLMServer


class FakeLLMServer:
    """The fake API in a background thread: ``with FakeLLMServer() as server: ...``."""

    def __init__(self, usage: dict[str, int] | None = None) -> None:
        self.usage = dict(usage or DEFAULT_USAGE)
        self.requests: list[dict[str, Any]] = []
        self.reported: list[dict[str, int] | None] = []
        self._failures: deque[int] = deque()
        self.served: dict[str, str] = {}
        self.usage_override: Any = None
        self.fail_always = 0
        self.cut_streams = False
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="fake-llm")

    @property
    def port(self) -> int:
        """The loopback port it listens on (chosen free by the OS)."""
        return int(self._httpd.server_address[1])

    @property
    def openai_url(self) -> str:
        """The ``base_url`` for ``openai.OpenAI``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        """The ``base_url`` for ``anthropic.Anthropic``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def bedrock_url(self) -> str:
        """The ``base_url`` for ``anthropic.AnthropicBedrock`` (or ``ANTHROPIC_BEDROCK_BASE_URL``)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeLLMServer:
        """Serve in a daemon thread; returns ``self``."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, *statuses: int) -> None:
        """The next requests answer these statuses, in order."""
        with self._lock:
            self._failures.extend(statuses)

    def take_failure(self) -> int:
        """The next planned failure status, or 0 (used by the request handler)."""
        with self._lock:
            return self._failures.popleft() if self._failures else self.fail_always

    def seen(self, path: str, model: str, stream: bool, status: int) -> None:
        """Record a request in :attr:`requests` (used by the request handler)."""
        with self._lock:
            self.requests.append({"path": path, "model": model, "stream": stream, "status": status or 200})

    def report(self, usage: dict[str, int] | None) -> None:
        """Record the usage a reply reported in :attr:`reported` (used by the request handler)."""
        with self._lock:
            self.reported.append(dict(usage) if usage is not None else None)

    def reset(self) -> None:
        """Forget the requests seen and the failures planned."""
        with self._lock:
            self.requests.clear()
            self.reported.clear()
            self._failures.clear()
            self.served.clear()
            self.usage_override = None
            self.fail_always = 0
            self.cut_streams = False


def main() -> None:  # pragma: no cover - manual use, and the LLM benchmark runs it
    """Serve in the foreground until interrupted, after printing the two base URLs on one line."""
    with FakeLLMServer() as srv:
        print(f"openai: {srv.openai_url}  anthropic: {srv.anthropic_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":  # pragma: no cover
    main()
