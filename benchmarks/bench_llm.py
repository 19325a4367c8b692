"""Overhead of sci_ext's LLM accounting per SDK call, against the same call uninstrumented.

    python benchmarks/bench_llm.py [--quick]      (BENCH_PAIRS=600 pairs by default)

The real openai and anthropic SDKs call the fake LLM server (sci_ext/testing/llm_server.py)
over loopback.  Calls come in pairs, one with the SDK's own ``request`` method and one
with sci_ext's wrapper (default settings: history, metrics and cache collectors on,
no budget), in alternating order, so machine load hits both sides alike.  Reported:
the median of each side and the median of the paired differences (goal <= 50 us, and
<= 2 % of the call), for plain chat completions, a streamed chat completion and
anthropic messages.  Loopback timing is noisy at the scale of tens of microseconds,
so the script also times the accounting alone: the patched ``request`` wrapping a
stand-in for the SDK method that returns an already parsed response.

Method: perf_counter around each call; every figure comes from this run on this
machine, so only the ratios are comparable across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sizes import add_size_options, by_size

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def us(seconds: float) -> str:
    return f"{seconds * 1e6:9.1f} us"


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _switches() -> tuple[Callable[[], None], Callable[[], None]]:
    """Functions that put the SDKs' own ``request`` methods in place, or sci_ext's wrappers."""
    from sci_ext.core import llm
    from sci_ext.core.llm import patch

    llm.instrument()
    entries = [
        (cls, name, orig, cls.__dict__[name])
        for done in [*patch._state.patched.values(), patch._state.http]  # the HTTP clients' send too
        for cls, name, orig in done
    ]

    def plain() -> None:
        for cls, name, orig, _wrapped in entries:
            setattr(cls, name, orig)

    def instrumented() -> None:
        for cls, name, _orig, wrapped in entries:
            setattr(cls, name, wrapped)

    return plain, instrumented


def compare(label: str, fn: Callable[[], Any], pairs: int) -> None:
    """Pairs of calls, one each way, in alternating order: both sides see the same machine load."""
    to_plain, to_instrumented = _switches()
    for _ in range(5):  # warm both paths (connections, price table, metrics)
        to_plain()
        fn()
        to_instrumented()
        fn()
    plain: list[float] = []
    inst: list[float] = []
    for i in range(pairs):
        order = (to_plain, to_instrumented) if i % 2 == 0 else (to_instrumented, to_plain)
        for switch in order:
            switch()
            t0 = time.perf_counter()
            fn()
            (plain if switch is to_plain else inst).append(time.perf_counter() - t0)
    to_instrumented()
    p, i_ = statistics.median(plain), statistics.median(inst)
    paired = statistics.median(b - a for a, b in zip(plain, inst, strict=True))
    print(f"\n[{label}] {pairs} pairs of calls")
    print(f"  uninstrumented median {us(p)}")
    print(f"  instrumented   median {us(i_)}")
    print(f"  overhead (median of paired differences) {us(paired)}  ({paired / p:+.2%} of the call)")
    print(f"ratio {label} instrumented/uninstrumented: {i_ / p:.4f}  (goal <= 1.02)")


def wrapper_only(n: int) -> None:
    """The accounting alone: the patched request around a stand-in that returns a parsed response."""
    import openai
    from openai.types.chat import ChatCompletion

    from sci_ext.core.llm import patch

    response = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "x"}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                  "prompt_tokens_details": {"cached_tokens": 200},
                  "completion_tokens_details": {"reasoning_tokens": 50}},
    })  # fmt: skip
    options = openai._models.FinalRequestOptions.construct(
        method="post", url="/chat/completions", json_data={"model": "gpt-4o-mini", "messages": []}
    )

    def original(self: Any, cast_to: Any, opts: Any, **kw: Any) -> Any:
        return response

    wrapped = patch._wrap_sync(original, "openai", (openai.Stream, openai.AsyncStream))
    patch._state.active = True
    for _ in range(200):
        wrapped(None, None, options)
    base = statistics.median(timed(lambda: original(None, None, options), n))
    t = statistics.median(timed(lambda: wrapped(None, None, options), n))
    print("\n[accounting alone] patched request around a stand-in returning a parsed ChatCompletion")
    print(f"  stand-in      median {us(base)}")
    print(f"  with sci_ext  median {us(t)}  overhead {us(t - base)}  (goal <= 50 us)")


class _Remote:
    def __init__(self, port: int) -> None:
        self.openai_url = f"http://127.0.0.1:{port}/v1"
        self.anthropic_url = f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _server_process() -> Iterator[_Remote]:
    """The fake server in its own process, as a real API is: it does not compete for this GIL."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "sci_ext" / "testing" / "llm_server.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        port = int(line.split("/v1")[0].rsplit(":", 1)[1])
        yield _Remote(port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_size_options(parser, "few calls")
    args = parser.parse_args()
    pairs = by_size(args, smoke=2, quick=20, full=int(os.environ.get("BENCH_PAIRS", 600)))
    tmp = tempfile.mkdtemp(prefix="sci_bench_llm_")
    for var in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        os.environ[var] = os.path.join(tmp, var.lower())
    import anthropic
    import openai

    from sci_ext.core.llm import history, prices

    prices.prewarm().join()
    with _server_process() as server:
        oc = openai.OpenAI(base_url=server.openai_url, api_key="sk-bench", max_retries=0)
        ac = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-bench", max_retries=0)
        msgs = [{"role": "user", "content": "hi"}]
        compare("openai chat", lambda: oc.chat.completions.create(model="gpt-4o-mini", messages=msgs), pairs)

        def streamed() -> None:
            s = oc.chat.completions.create(
                model="gpt-4o-mini", messages=msgs, stream=True, stream_options={"include_usage": True}
            )
            for _ in s:
                pass

        compare("openai chat stream", streamed, pairs)
        compare(
            "anthropic messages",
            lambda: ac.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=msgs),
            pairs,
        )
    wrapper_only(by_size(args, smoke=10, quick=200, full=5000))
    history.flush()


if __name__ == "__main__":
    main()
