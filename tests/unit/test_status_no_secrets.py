"""Issue 18 item 7: no field of the status (``/sci/api/status``, the panel, ``%sci_dashboard``) carries a known secret."""

from __future__ import annotations

import json

SECRET = "ghp_Q7zX2mN9vB4kL8pR3tY6wE1sD5fG0hJ2kL4m"


def test_no_status_field_carries_a_known_secret() -> None:
    from sci_ext.core.llm import LLMCall, usage
    from sci_ext.core.resilience import CircuitBreaker
    from sci_ext.core.security import get_redactor
    from sci_ext.core.telemetry import records
    from sci_ext.core.telemetry.health import health_check, unregister_check
    from sci_ext.core.telemetry.status import collect_status

    get_redactor().add("GITHUB_TOKEN", SECRET)
    try:
        # a secret in every user-chosen string the status shows: breaker and check names,
        # check details, error messages, LLM model and provider
        def down() -> None:
            raise ConnectionError("down")

        try:
            CircuitBreaker(f"svc-{SECRET}", store="disk").call(down)  # a failure: the record is written
        except ConnectionError:
            pass
        health_check(f"probe-{SECRET}")(lambda: ("degraded", f"token {SECRET} expires"))
        records.append_error({"where": "w", "message": f"failed with {SECRET}", "error_type": "ValueError"})
        usage.record(LLMCall(f"p-{SECRET}", f"m-{SECRET}", "chat", "ok", 0.0, 0.1, input=1, output=1))
        status = collect_status(run_checks=True)
    finally:
        unregister_check(f"probe-{SECRET}")
        get_redactor().remove("GITHUB_TOKEN")
    text = json.dumps(status, default=str)
    assert SECRET not in text
    # the fields are there, redacted (the test would pass vacuously otherwise)
    assert any(b["name"] == "svc-[REDACTED:GITHUB_TOKEN]" for b in status["breakers"]), status["breakers"]
    assert any(c["name"] == "probe-[REDACTED:GITHUB_TOKEN]" for c in status["checks"]), status["checks"]
    assert "[REDACTED:GITHUB_TOKEN]" in json.dumps(status["errors"])
