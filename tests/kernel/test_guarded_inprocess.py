"""%%guarded in an in-process IPython shell: option parsing and flows (fast, and counted by coverage)."""

from __future__ import annotations

import pytest
from inprocess_shell import freshly_loaded_shell
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from sci_ext.kernel import KernelState
from sci_ext.kernel.guard_magics import resolve_on, split_fallback


@pytest.fixture
def ip():
    shell = freshly_loaded_shell()
    shell.user_ns.pop("_sci_error", None)
    yield shell
    if KernelState.get(shell).loaded:
        shell.run_line_magic("unload_ext", "sci_ext")


def test_split_fallback():
    assert split_fallback("name --retries 2") == ("name --retries 2", None)
    assert split_fallback("x --fallback result = None") == ("x", "result = None")
    assert split_fallback("--fallback 'print(\"a b\")'") == ("", 'print("a b")')
    assert split_fallback("--fallback=y = 1") == ("", "y = 1")
    with pytest.raises(UsageError, match="needs a Python statement"):
        split_fallback("--fallback ''")
    with pytest.raises(UsageError, match="not a valid Python statement"):
        split_fallback("--fallback for")


def test_resolve_on_names():
    class Custom(Exception):
        pass

    import json

    pred = resolve_on(
        "Custom, timeout, json.JSONDecodeError, RateLimitError, TransientError", {"Custom": Custom, "json": json}
    )
    assert pred(Custom()) and pred(TimeoutError()) and pred(json.JSONDecodeError("x", "y", 0))
    assert pred(type("RateLimitError", (Exception,), {})())
    from sci_ext.core.errors import TransientError

    assert pred(TransientError()) and not pred(ValueError())
    with pytest.raises(UsageError, match="unknown exception or category 'Nope'"):
        resolve_on("Nope", {})
    with pytest.raises(UsageError, match="never retried"):
        resolve_on("SystemExit", {})
    with pytest.raises(UsageError, match="at least one"):
        resolve_on(" , ", {})
    with pytest.raises(UsageError, match="unknown exception"):
        resolve_on("json.nothing", {"json": json})


def test_retry_then_display_last_expression(ip, no_waits, capsys):
    ip.user_ns["n"] = 0
    result = ip.run_cell(
        "%%guarded demo --retries 3\nn += 1\nif n < 3:\n    raise ConnectionResetError('blip')\nn * 10"
    )
    assert result.error_in_exec is None and result.result == 30
    err = capsys.readouterr().err
    assert err.count("guarded demo: attempt") == 2
    assert "attempt 1/4 failed with ConnectionResetError: blip [transient]; retrying in 0.00 s" in err


def test_gives_up_with_summary_and_user_traceback(ip, no_waits, capsys):
    result = ip.run_cell("%%guarded --retries 1\ndef f():\n    raise TimeoutError('slow')\nf()")
    assert isinstance(result.error_in_exec, TimeoutError)
    captured = capsys.readouterr()
    assert "guarded cell: gave up after 2 attempt(s): TimeoutError: slow [timeout]" in captured.err
    assert "tenacity" not in captured.out + captured.err
    from sci_ext.core.resilience import recent_errors

    assert recent_errors(1)[0].where == "%%guarded cell"


def test_open_breaker_runs_fallback_without_calling(ip, capsys):
    from sci_ext.core.resilience import circuit_breaker

    circuit_breaker("inproc", fail_max=1).trip()
    ip.user_ns["called"] = False
    result = ip.run_cell("%%guarded --breaker inproc --fallback answer = str(_sci_error)\ncalled = True")
    assert result.error_in_exec is None
    assert ip.user_ns["called"] is False
    assert ip.user_ns["answer"].startswith("circuit breaker 'inproc' is open")
    err = capsys.readouterr().err
    assert "running fallback" in err
    result = ip.run_cell("%%guarded --breaker inproc\ncalled = True")
    assert type(result.error_in_exec).__name__ == "CircuitOpenError"


def test_rate_option_and_usage_errors(ip, capsys, no_waits):
    ip.run_cell("%%guarded bucket --rate 1/hour\nx = 1")
    ip.run_cell("%%guarded bucket --rate 1/hour\nx = 2")
    assert "guarded bucket: rate limit 1/hour, waiting" in capsys.readouterr().err
    for line, message in [
        ("--wait-initial -1", "--wait-initial must be >= 0"),
        ("--rate often", "--rate: rate 'often'"),
        ("bad/name", "NAME: 'bad/name' may only hold"),
    ]:
        result = ip.run_cell(f"%%guarded {line}\nx = 3")
        assert isinstance(result.error_in_exec, UsageError) and message in str(result.error_in_exec)
    assert ip.user_ns["x"] == 2


def test_timeout_bounds_the_retrying(ip, capsys):
    # With 0.2 s waits and a 0.3 s budget, the second wait would end past it: 2 attempts.
    ip.user_ns["n"] = 0
    result = ip.run_cell(
        "%%guarded --retries 10 --wait-initial 0.2 --wait-max 0.2 --timeout 0.3\nn += 1\nraise TimeoutError(n)"
    )
    assert isinstance(result.error_in_exec, TimeoutError)
    assert ip.user_ns["n"] == 2
    assert "gave up after 2 attempt(s)" in capsys.readouterr().err


def test_top_level_await_is_a_clear_usage_error(ip):
    result = ip.run_cell("%%guarded\nimport asyncio\nawait asyncio.sleep(0)")
    assert isinstance(result.error_in_exec, UsageError)
    assert "cannot re-run top-level await" in str(result.error_in_exec)


def test_breaker_opening_mid_cell_shows_what_opened_it(ip, no_waits, capsys):
    from sci_ext.core import get_config_manager

    get_config_manager().set("breaker.fail_max", 2)
    ip.user_ns["n"] = 0
    result = ip.run_cell("%%guarded --breaker midcell --retries 5\nn += 1\nraise ConnectionResetError(f'reset {n}')")
    error = result.error_in_exec
    assert type(error).__name__ == "CircuitOpenError" and ip.user_ns["n"] == 2
    assert isinstance(error.__context__, ConnectionResetError) and str(error.__context__) == "reset 2"
    assert "is open after 2 consecutive failures" in capsys.readouterr().err


def test_trailing_semicolon_suppresses_the_display_as_in_a_plain_cell(ip):
    assert ip.run_cell("%%guarded\n6 * 7").result == 42
    result = ip.run_cell("%%guarded\nz = 6 * 7\nz;  # quiet")
    assert result.error_in_exec is None and result.result is None
    assert ip.user_ns["z"] == 42


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--retries -1", "--retries must be >= 0, got -1"),
        ("--on Nope", "--on: unknown exception or category 'Nope'"),
        ("--on KeyboardInterrupt", "is never retried"),
        ("--rate 5/fortnight", "--rate: rate '5/fortnight': unknown unit 'fortnight'"),
        ("--timeout -3", "--timeout must be >= 0"),
        ("--fallback x = = 1", "--fallback: not a valid Python statement"),
        ("--breaker bad/name", "--breaker: 'bad/name' may only hold"),
        ("--frobnicate", "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_options_are_one_line_usage_errors(ip, capsys, line, message):
    """Each bad option: one UsageError line on stderr, no traceback, the cell not run."""
    ip.user_ns["ran"] = False
    capsys.readouterr()
    ip.run_cell(f"%%guarded {line}\nran = True")
    err = capsys.readouterr().err
    assert err.startswith("UsageError: ") and message in err, err
    assert err.count("\n") == 1
    assert ip.user_ns["ran"] is False


def _guarded_label(err: str) -> str | None:
    import re

    match = re.search(r"guarded (\S+): ValueError is not transient", err)
    return match.group(1) if match else None


@pytest.mark.parametrize(
    "line",
    ["$label --retries {n}", "{label + '.x'}", "$twice", "{{braces}}$missing", "$$label", "plain --retries 1", "$line"],
)
@pytest.mark.parametrize("from_function", [False, True])
def test_line_variables_expand_as_ipython_expands_them(ip, capsys, line, from_function):
    """%%guarded expands $name/{expr} itself (IPython's expansion copies the namespace): same result.

    The oracle is IPython's own expansion, seen by a cell magic that does not opt out, called
    the same way (a cell, or run_cell_magic inside a function, whose frame IPython does not
    use).  Each line runs twice: the first call goes through the lazy stand-in, the second
    reaches the magic directly; a value holding '$' must not be expanded a second time.
    """
    seen: list[str] = []
    ip.register_magic_function(lambda line, cell: seen.append(line), "cell", "expansion_spy")
    ip.user_ns.update(label="lbl", n=1, twice="$label", line="fromns")

    def cell(magic: str, body: str) -> str:
        if not from_function:
            return f"%%{magic} {line}\n{body}"
        return (
            "def _sci_call():\n"
            "    label = 'fromlocals'\n"
            f"    get_ipython().run_cell_magic({magic!r}, {line!r}, {body!r})\n"
            "_sci_call()"
        )

    ip.run_cell(cell("expansion_spy", "pass"))
    expected = seen[-1].split()[0]
    for _ in range(2):
        ip.run_cell(cell("guarded", "raise ValueError('boom')"))
        err = capsys.readouterr().err
        shown = _guarded_label(err)
        if shown is None:  # not a valid NAME: the usage error quotes the expanded line
            assert f"{expected!r} may only hold" in err
        else:
            assert shown == expected


def test_a_syntax_error_names_the_line_as_typed(ip):
    """The body's SyntaxError points at the typed line (the %%guarded line counted), as in a plain cell."""
    plain = ip.run_cell("x = 1\ny = (\n").error_in_exec or ip.run_cell("x = 1\ny = (\n").error_before_exec
    guarded = ip.run_cell("%%guarded\nx = 1\ny = (\n")
    error = guarded.error_in_exec or guarded.error_before_exec
    assert isinstance(error, SyntaxError) and isinstance(plain, SyntaxError)
    assert (error.lineno, error.text.strip()) == (plain.lineno + 1, plain.text.strip()) == (3, "y = (")


def test_a_body_ipythons_tokenizer_refuses_fails_with_ipythons_error(ip):
    """A body the token-transform shortcut skipped, which IPython's tokenizer refuses: IPython's error."""

    body = "x = 1\n    pass\n  2)"
    with pytest.raises(SyntaxError) as expected:
        InteractiveShell.transform_cell(ip, body)
    guarded = ip.run_cell("%%guarded\n" + body)
    error = guarded.error_in_exec or guarded.error_before_exec
    assert isinstance(error, SyntaxError)
    assert (type(error), error.msg) == (type(expected.value), expected.value.msg)
