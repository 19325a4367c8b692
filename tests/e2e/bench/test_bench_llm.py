"""Smoke test of benchmarks/bench_llm.py: it runs and prints its ratio lines."""

from __future__ import annotations

from bench_support import run_benchmark


def test_bench_llm_quick_prints_ratios() -> None:
    text = run_benchmark("bench_llm.py")
    for label in ("openai chat", "openai chat stream", "anthropic messages"):
        assert f"ratio {label} instrumented/uninstrumented:" in text, text
    assert "[accounting alone]" in text, text
    value = float(text.split("ratio openai chat instrumented/uninstrumented:")[1].split()[0])
    assert value > 0
