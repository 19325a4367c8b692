"""%%guarded in real kernels against the real fault server."""

from __future__ import annotations

import pytest
from guard_fixtures import run_and_interrupt

pytestmark = [pytest.mark.kernel, pytest.mark.module_kernel]

SETUP = """
import json, urllib.request
URL = {url!r}
def fetch(timeout=2.0):
    with urllib.request.urlopen(URL, timeout=timeout) as resp:
        return json.load(resp)
%sci_config retry.jitter=0 retry.initial_wait=0.01
"""


def setup(kernel, fault_server):
    kernel.run(SETUP.format(url=fault_server.url)).check()


def test_guarded_cell_recovers_from_503_reset_timeout_and_429(kernel, fault_server):
    setup(kernel, fault_server)
    fault_server.script("503", "reset", "hang:3", "429:0.2", "ok")
    res = kernel.run("%%guarded fetch --retries 5\nreply = fetch(timeout=0.5)\nreply['ok']").check()
    lines = [line for line in res.stderr.splitlines() if line.startswith("guarded fetch: attempt")]
    assert len(lines) == 4, res.stderr
    assert lines[0].startswith("guarded fetch: attempt 1/6 failed with HTTPError: HTTP Error 503")
    assert "[transient]; retrying in" in lines[0]
    assert "attempt 2/6 failed with" in lines[1] and "[transient]" in lines[1]
    assert "attempt 3/6 failed with" in lines[2] and "[timeout]" in lines[2]
    assert "attempt 4/6 failed with HTTPError: HTTP Error 429" in lines[3]
    assert lines[3].endswith("[rate_limit]; retrying in 0.20 s")  # Retry-After honoured
    assert res.result["text/plain"] == "True"
    assert fault_server.hits == 5


def test_permanent_error_fails_at_once_with_summary_and_traceback(kernel, fault_server):
    setup(kernel, fault_server)
    fault_server.script("404")
    res = kernel.run("%%guarded fetch --retries 5\nreply = fetch()")
    assert res.error is not None and res.error["ename"] == "HTTPError"
    assert "guarded fetch: HTTPError is not transient: not retried (HTTP Error 404: Not Found)" in res.stderr
    assert "attempt 1/" not in res.stderr
    traceback = "\n".join(res.error["traceback"])
    assert "reply = fetch()" in traceback  # the user's frames, not the retry machinery
    assert "tenacity" not in traceback
    assert fault_server.hits == 1


def test_attempts_are_bounded_and_fallback_gets_the_error(kernel, fault_server):
    setup(kernel, fault_server)
    fault_server.script(default="503")
    res = kernel.run(
        "%%guarded fetch --retries 2 --fallback reply = {'fallback': type(_sci_error).__name__}\nreply = fetch()"
    ).check()
    assert res.stderr.count("retrying in") == 2
    assert "gave up after 3 attempt(s)" in res.stderr and "running fallback" in res.stderr
    assert kernel.run("reply").check().result["text/plain"] == "{'fallback': 'HTTPError'}"
    assert fault_server.hits == 3


def test_on_replaces_what_is_retried(kernel, fault_server):
    setup(kernel, fault_server)
    kernel.run("n = 0").check()
    res = kernel.run("%%guarded --retries 3 --on KeyError\nn += 1\nif n < 3: raise KeyError(n)\nn").check()
    assert res.result["text/plain"] == "3" and res.stderr.count("retrying") == 2
    fault_server.script("503")
    res = kernel.run("%%guarded --retries 3 --on KeyError\nfetch()")
    assert res.error["ename"] == "HTTPError" and fault_server.hits == 1  # 503 is no longer retried
    fault_server.script("503", "ok")
    res = kernel.run("%%guarded --retries 3 --on RateLimitError,transient\nfetch()['ok']").check()
    assert res.result["text/plain"] == "True"


def test_a_bad_option_is_a_one_line_usage_error_in_a_real_kernel(kernel):
    """The kernel's side of usage errors; every bad option is checked in-process (test_guarded_inprocess)."""
    kernel.run("ran = False").check()
    res = kernel.run("%%guarded --retries -1\nran = True")
    # IPython shows a UsageError as one stderr line, without a traceback.
    assert res.stderr.startswith("UsageError: ") and "--retries must be >= 0, got -1" in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1
    assert kernel.run("ran").check().result["text/plain"] == "False"


def test_two_kernels_share_a_breaker(kernel_factory, fault_server):
    first, second = kernel_factory(), kernel_factory()
    for k in (first, second):
        setup(k, fault_server)
    first.run("%sci_config breaker.fail_max=2").check()
    fault_server.script(default="503")
    res = first.run("%%guarded --breaker llm-api --retries 5\nfetch()")
    assert res.error is not None and res.error["ename"] == "CircuitOpenError"
    assert "circuit breaker 'llm-api' is open after 2 consecutive failures; next trial in" in res.stderr
    assert fault_server.hits == 2  # opened after exactly fail_max failures, then failed fast
    res = second.run("%%guarded --breaker llm-api --fallback reply = 'cached answer'\nreply = fetch()").check()
    assert "circuit breaker 'llm-api' is open" in res.stderr and "running fallback" in res.stderr
    assert second.run("reply").check().result["text/plain"] == "'cached answer'"
    assert fault_server.hits == 2  # the second kernel never called the failing service
    res = second.run("from sci_ext.core import CircuitBreaker\nCircuitBreaker('llm-api').state").check()
    assert res.result["text/plain"] == "'open'"


def test_interrupt_during_a_wait_stops_at_once_and_is_not_a_failure(kernel, fault_server):
    setup(kernel, fault_server)
    fault_server.script(default="503")
    res = run_and_interrupt(
        kernel, "%%guarded --breaker intr --retries 3 --wait-initial 60 --wait-max 60\nfetch()", "retrying in 60.00 s"
    )
    assert res.interrupted and res.error is not None and res.error["ename"] == "KeyboardInterrupt"
    assert fault_server.hits == 1  # no second attempt after the interrupt
    res = kernel.run("from sci_ext.core import CircuitBreaker\nCircuitBreaker('intr').failures").check()
    assert res.result["text/plain"] == "1"  # the 503 counted, the interrupt did not


def test_interrupt_during_an_attempt_is_not_a_breaker_failure(kernel, fault_server):
    setup(kernel, fault_server)
    fault_server.script("hang:30")
    res = run_and_interrupt(
        kernel, "%%guarded --breaker hang --retries 3\nprint('calling', flush=True)\nfetch(timeout=60)", "calling"
    )
    assert res.interrupted and res.error["ename"] == "KeyboardInterrupt"
    res = kernel.run("from sci_ext.core import CircuitBreaker\nb = CircuitBreaker('hang'); (b.state, b.failures)")
    assert res.check().result["text/plain"] == "('closed', 0)"


def test_rate_limited_loop_prints_wait_lines(kernel):
    res = kernel.run(
        "for i in range(3):\n    get_ipython().run_cell_magic('guarded', 'tick --rate 4/second', 'print(\"tick\", i)')"
    ).check()
    assert res.stdout.count("tick") == 3
    assert res.stderr.count("guarded tick: rate limit 4/second, waiting") == 2


def test_last_expression_magics_and_shell_escapes_inside(kernel):
    res = kernel.run("%%guarded\nx = 6\n%time y = x * 7\ny").check()
    assert res.result["text/plain"] == "42"
    res = kernel.run("%%guarded\nout = !echo hi\nout[0]").check()
    assert res.result["text/plain"] == "'hi'"
