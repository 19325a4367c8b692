"""Token counts from what the SDKs return: responses, stream chunks and stream events.

Works on the SDKs' pydantic objects by attribute name, so one reader covers chat
completions, the responses API, embeddings and anthropic messages.  Counts follow
one convention across providers (see :data:`~.events.TOKEN_KINDS`): anthropic's
``input_tokens`` leaves the cached and cache-written tokens out, so they are added.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StreamUsage", "tokens_of", "usage_of_response"]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def tokens_of(usage: Any) -> dict[str, int | None]:
    """Token counts of a ``usage`` object of any of the supported APIs (missing kinds are None)."""
    out: dict[str, int | None] = {}
    get = getattr
    prompt = _int(get(usage, "prompt_tokens", None))
    if prompt is not None or _int(get(usage, "completion_tokens", None)) is not None:
        # openai chat completions, legacy completions and embeddings
        out["input"] = prompt
        out["output"] = _int(get(usage, "completion_tokens", None))
        details = get(usage, "prompt_tokens_details", None)
        out["cached_input"] = _int(get(details, "cached_tokens", None)) if details is not None else None
        done = get(usage, "completion_tokens_details", None)
        out["reasoning"] = _int(get(done, "reasoning_tokens", None)) if done is not None else None
        return out
    inp = _int(get(usage, "input_tokens", None))
    outp = _int(get(usage, "output_tokens", None))
    details = get(usage, "input_tokens_details", None)
    if details is not None or get(usage, "output_tokens_details", None) is not None:
        # openai responses API: input_tokens already includes the cached ones
        out["input"] = inp
        out["output"] = outp
        out["cached_input"] = _int(get(details, "cached_tokens", None)) if details is not None else None
        done = get(usage, "output_tokens_details", None)
        out["reasoning"] = _int(get(done, "reasoning_tokens", None)) if done is not None else None
        return out
    # anthropic messages: input_tokens excludes cache reads and writes
    read = _int(get(usage, "cache_read_input_tokens", None))
    write = _int(get(usage, "cache_creation_input_tokens", None))
    if inp is not None:
        out["input"] = inp + (read or 0) + (write or 0)
    else:
        out["input"] = None
    out["output"] = outp
    out["cached_input"] = read
    out["cache_write"] = write
    return out


def usage_of_response(result: Any) -> tuple[str | None, dict[str, int | None] | None]:
    """``(model, tokens)`` of a non-streaming result; ``tokens`` is None when it reports no usage."""
    usage = getattr(result, "usage", None)
    model = getattr(result, "model", None)
    return (model if isinstance(model, str) else None), (tokens_of(usage) if usage is not None else None)


class StreamUsage:
    """Accumulates the usage reported by the events of one stream."""

    __slots__ = ("final", "model", "tokens")

    def __init__(self) -> None:
        self.model: str | None = None
        self.tokens: dict[str, int | None] | None = None
        self.final = False  # the event carrying the stream's final counts was seen

    def cut(self) -> dict[str, int | None] | None:
        """The counts of a stream that broke off: output unknown unless its final counts came."""
        if self.final or self.tokens is None:
            return self.tokens
        return {**self.tokens, "output": None, "reasoning": None}

    def see(self, item: Any) -> None:
        """Read one chunk or event (most carry no usage and cost one attribute read)."""
        kind = getattr(item, "type", None)
        if kind == "message_start":  # anthropic: input counts (and the first output count)
            message = getattr(item, "message", None)
            self.model = getattr(message, "model", None) or self.model
            usage = getattr(message, "usage", None)
            if usage is not None:
                self.tokens = tokens_of(usage)
        elif kind == "message_delta":  # anthropic: cumulative output count (and sometimes input)
            usage = getattr(item, "usage", None)
            if usage is not None:
                self._delta(usage)
                self.final = True
        elif kind in ("response.completed", "response.incomplete", "response.failed"):  # openai responses
            response = getattr(item, "response", None)
            self.model = getattr(response, "model", None) or self.model
            usage = getattr(response, "usage", None)
            if usage is not None:
                self.tokens = tokens_of(usage)
                self.final = True
        elif kind is None:  # openai chat completion chunks: usage in the last one
            usage = getattr(item, "usage", None)
            if self.model is None:
                model = getattr(item, "model", None)
                self.model = model if isinstance(model, str) else None
            if usage is not None:
                self.tokens = tokens_of(usage)
                self.final = True

    def _delta(self, usage: Any) -> None:
        tokens = self.tokens if self.tokens is not None else {}
        out = _int(getattr(usage, "output_tokens", None))
        if out is not None:
            tokens["output"] = out
        inp = _int(getattr(usage, "input_tokens", None))
        if inp is not None:
            read = _int(getattr(usage, "cache_read_input_tokens", None))
            write = _int(getattr(usage, "cache_creation_input_tokens", None))
            read = tokens.get("cached_input") if read is None else read
            write = tokens.get("cache_write") if write is None else write
            tokens["input"] = inp + (read or 0) + (write or 0)
            tokens["cached_input"] = read
            tokens["cache_write"] = write
        self.tokens = tokens
