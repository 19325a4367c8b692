"""Review 2026-12-b R2: a secret inside an LLM model or provider string is redacted where the call is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SECRET = "sk-proj-Zx9QvT3mK8pL2wR7nB4yH6jD1fG5sA0c"


@pytest.fixture
def known_secret():
    from sci_ext.core.security import get_redactor

    get_redactor().add("OPENAI_API_KEY", SECRET)
    yield SECRET
    get_redactor().remove("OPENAI_API_KEY")


def test_secret_in_model_reaches_no_sink(known_secret: str) -> None:
    from prometheus_client import REGISTRY, generate_latest

    from sci_ext.core.config import get_config
    from sci_ext.core.llm import LLMCall, history, usage
    from sci_ext.core.telemetry.metrics import metrics_registry
    from sci_ext.core.telemetry.status import collect_status

    history.install()
    try:
        call = usage.record(
            LLMCall(f"openai-{known_secret}", f"ft:gpt-4o:{known_secret}", "chat", "ok", 0.0, 0.1, input=10, output=5)
        )
    finally:
        history.uninstall()
    assert history.flush()
    assert call.model == "ft:gpt-4o:[REDACTED:OPENAI_API_KEY]"
    assert call.provider == "openai-[REDACTED:OPENAI_API_KEY]"
    llm = str(collect_status(run_checks=False).get("llm"))
    assert "ft:gpt-4o:[REDACTED:OPENAI_API_KEY]" in llm  # the call is there, redacted
    metrics = generate_latest(metrics_registry()).decode() + generate_latest(REGISTRY).decode()
    assert known_secret not in llm and known_secret not in metrics
    state = Path(get_config().core.state_dir)
    stored = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file())
    assert known_secret.encode() not in stored and b"REDACTED:OPENAI_API_KEY" in stored


@settings(max_examples=50, deadline=None)
@given(prefix=st.text(max_size=20), suffix=st.text(max_size=20))
def test_model_strings_never_keep_a_known_secret(prefix: str, suffix: str) -> None:
    from sci_ext.core.llm import LLMCall
    from sci_ext.core.security import get_redactor

    get_redactor().add("OPENAI_API_KEY", SECRET)
    try:
        call = LLMCall(prefix + SECRET + suffix, suffix + SECRET, "chat", "ok", 0.0, 0.1, error=SECRET)
    finally:
        get_redactor().remove("OPENAI_API_KEY")
    assert SECRET not in call.model and SECRET not in call.provider and SECRET not in call.error
