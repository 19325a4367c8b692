"""Overhead of sci_ext's LLM accounting per SDK call, against the same call uninstrumented.

    python benchmarks/bench_llm.py [--quick]

The real openai and anthropic SDKs call the fake LLM server (tests/fake_llm_server.py)
over loopback.  Rounds alternate: N calls uninstrumented, then N calls with
``sci_ext.core.llm.instrument()`` (default settings: history, metrics and cache
collectors on, no budget), so drift hits both sides alike.  Reported: the median of
each side, overhead = median(instrumented) - median(plain) (goal <= 50 us, and
<= 2 % of the call), for plain chat completions, a streamed chat completion and
anthropic messages.  Loopback timing is noisy at the scale of tens of microseconds,
so the script also times the accounting alone: the patched ``request`` wrapping a
stand-in for the SDK method that returns an already parsed response.

Method: perf_counter around each call; every figure comes from this run on this
machine, so only the ratios are comparable across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def compare(label: str, fn: Callable[[], Any], rounds: int, n: int) -> None:
    from sci_ext.core import llm

    plain: list[float] = []
    inst: list[float] = []
    for _ in range(3):  # warm both paths (connections, price table, metrics)
        fn()
    llm.instrument()
    for _ in range(3):
        fn()
    for _ in range(rounds):
        llm.uninstrument()
        plain += timed(fn, n)
        llm.instrument()
        inst += timed(fn, n)
    p, i = statistics.median(plain), statistics.median(inst)
    print(f"\n[{label}] {len(plain)} calls each side")
    print(f"  uninstrumented median {us(p)}")
    print(f"  instrumented   median {us(i)}  overhead {us(i - p)}  ({(i - p) / p:+.2%} of the call)")
    print(f"ratio {label} instrumented/uninstrumented: {i / p:.4f}  (goal <= 1.02)")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few calls: a smoke run")
    args = parser.parse_args()
    rounds, n = (2, 10) if args.quick else (10, 60)
    tmp = tempfile.mkdtemp(prefix="sci_bench_llm_")
    for var in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        os.environ[var] = os.path.join(tmp, var.lower())
    import anthropic
    import openai
    from fake_llm_server import FakeLLMServer

    from sci_ext.core.llm import history, prices

    prices.prewarm().join()
    with FakeLLMServer() as server:
        oc = openai.OpenAI(base_url=server.openai_url, api_key="sk-bench", max_retries=0)
        ac = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-bench", max_retries=0)
        msgs = [{"role": "user", "content": "hi"}]
        compare("openai chat", lambda: oc.chat.completions.create(model="gpt-4o-mini", messages=msgs), rounds, n)

        def streamed() -> None:
            s = oc.chat.completions.create(
                model="gpt-4o-mini", messages=msgs, stream=True, stream_options={"include_usage": True}
            )
            for _ in s:
                pass

        compare("openai chat stream", streamed, rounds, n)
        compare(
            "anthropic messages",
            lambda: ac.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=msgs),
            rounds,
            n,
        )
    wrapper_only(200 if args.quick else 5000)
    history.flush()


if __name__ == "__main__":
    main()
