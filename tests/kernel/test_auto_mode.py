"""Auto mode (``%sci_cache auto on``, ``cache.auto``): every code cell cached without editing it, in-process."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from sci_ext.core.cache.layered import get_memory_store
from sci_ext.kernel.cellcache.auto import skip_reason
from sci_ext.kernel.cellcache.session import SESSION


@pytest.fixture
def ip():
    from IPython.testing.globalipapp import get_ipython as start_ipython

    shell = start_ipython()
    from sci_ext.kernel import KernelState

    if not KernelState.get(shell).loaded:
        shell.run_line_magic("load_ext", "sci_ext")
    get_memory_store().clear()
    keep = set(shell.user_ns)
    shell.run_line_magic("sci_cache", "auto on")
    yield shell
    shell.run_line_magic("sci_cache", "auto off")
    for name in set(shell.user_ns) - keep:
        del shell.user_ns[name]


def run(ip, code):
    SESSION.last = None
    return ip.run_cell(code)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("", "empty"),
        ("# just a comment\n\n", "empty"),
        ("import numpy as np\nfrom os import path", "only imports"),
        ("%matplotlib inline", "only line magics or shell commands"),
        ("!echo hi\n%time 1", "only line magics or shell commands"),
        ("df", "only shows a value"),
        ("df.shape", "only shows a value"),
        ("xs[0]", "only shows a value"),
        ("%%bash\necho hi", "starts with the cell magic %%bash"),
        ("%%cached name\nx = 1", "starts with the cell magic %%cached"),
        ("x = (", "does not parse"),
    ],
)
def test_cells_left_as_written_and_why(cell, reason):
    assert skip_reason(cell) == reason


@pytest.mark.parametrize(
    "cell",
    ["x = 1", "df.head()", "model.fit(X, y)", "print(1)", "import os\nx = os.getcwd()", "!ls\nfiles = 3", "xs[i]"],
)
def test_cells_that_compute_are_cached(cell):
    assert skip_reason(cell) is None


def test_every_cell_is_cached_and_restored(ip, capsys):
    ip.user_ns["k"] = 3
    cell = "print('working')\nsq = k ** 2"
    run(ip, cell)
    assert SESSION.last is not None and SESSION.last.status == "miss"
    assert ip.user_ns["sq"] == 9
    del ip.user_ns["sq"]
    capsys.readouterr()
    run(ip, cell)
    assert SESSION.last.status == "hit" and ip.user_ns["sq"] == 9
    out = capsys.readouterr().out
    assert "working" in out and "restored" in out
    ip.user_ns["k"] = 4  # an input changed: the cell runs again
    run(ip, cell)
    assert SESSION.last.status == "miss" and ip.user_ns["sq"] == 16


def test_nocache_runs_plain_in_auto_mode_and_without_it(ip, capsys):
    for mode in ("on", "off"):
        ip.run_line_magic("sci_cache", f"auto {mode}")
        run(ip, "%%nocache\nplain = 5\nprint('plain ran')")
        assert SESSION.last is None, "a %%nocache cell went through the cache"
        assert ip.user_ns["plain"] == 5 and "plain ran" in capsys.readouterr().out


def test_skipped_cells_do_not_go_through_the_cache(ip):
    ip.user_ns["df"] = [1, 2]
    for cell in ("import math", "df", "%precision 3"):
        result = run(ip, cell)
        assert result.success and SESSION.last is None, cell


def test_a_failing_cell_keeps_its_bindings_and_is_not_stored(ip):
    cell = "def helper():\n    return 42\nraise ValueError('boom')"
    result = run(ip, cell)
    assert isinstance(result.error_in_exec, ValueError)
    assert ip.user_ns["helper"]() == 42  # as in a plain run
    result = run(ip, cell)
    assert isinstance(result.error_in_exec, ValueError)  # ran again: nothing was stored


def test_a_magic_body_is_not_cached_twice(ip):
    # %%cached and %%guarded transform their own body: auto mode must leave those alone.
    result = run(ip, "%%guarded\nguarded_value = 7")
    assert result.success and ip.user_ns["guarded_value"] == 7


def test_auto_follows_the_configuration(ip, monkeypatch):
    from sci_ext.core.config import get_config_manager

    ip.run_line_magic("sci_cache", "auto off")
    run(ip, "off_value = 1")
    assert SESSION.last is None
    get_config_manager().set("cache.auto", True)
    run(ip, "on_value = 2")
    assert SESSION.last is not None


def test_auto_usage_errors_say_what_is_expected(ip):
    with pytest.raises(UsageError, match="expected on or off, got 'maybe'"):
        ip.run_line_magic("sci_cache", "auto maybe")


def test_an_uncacheable_cell_says_why_once(ip, capsys):
    cell = "import threading\nlock = threading.Lock()"
    run(ip, cell)
    first = capsys.readouterr().err
    run(ip, cell)
    second = capsys.readouterr().err
    assert "not cached" in first, first
    assert "not cached" not in second, "the one line was shown again on the second run"


@pytest.mark.parametrize("store_history", [True, False])
def test_a_trailing_semicolon_shows_what_the_plain_cell_shows(ip, capsys, store_history):
    # The oracle is the same cell run plain, the same way. nbval runs cells with
    # store_history=False, where IPython's `;` rule reads the last *stored* input: there a
    # plain `x;` shows x, and a cached one must too (a verdict difference otherwise).
    ip.run_cell("semi_value = 41", store_history=True)
    outputs = {}
    for mode in ("off", "on"):
        ip.run_line_magic("sci_cache", f"auto {mode}")
        capsys.readouterr()
        for cell in ("semi_value + 1;", "semi_value + 1"):
            SESSION.last = None
            ip.run_cell(cell, store_history=store_history)
            if mode == "on":
                assert SESSION.last is not None, cell  # went through the cache
            outputs[mode, cell] = "42" in capsys.readouterr().out
    assert outputs["on", "semi_value + 1;"] == outputs["off", "semi_value + 1;"]
    assert outputs["on", "semi_value + 1"] and outputs["off", "semi_value + 1"]
    assert outputs["off", "semi_value + 1;"] is not store_history  # the quirk is IPython's own


def test_a_trailing_semicolon_is_part_of_the_key(ip, capsys):
    # normalize() ignores the ';', but `x;` shows nothing where `x` shows x: a hit of one
    # must never replay the other's display.
    ip.user_ns["sv"] = 5
    for cell, shown in (("sv * 2;", False), ("sv * 2", True), ("sv * 2;", False), ("sv * 2", True)):
        SESSION.last = None
        ip.run_cell(cell, store_history=True)  # as a notebook runs it
        out = capsys.readouterr().out
        assert ("10" in out) is shown, (cell, out)
    assert SESSION.last is not None and SESSION.last.status == "hit"


@pytest.mark.parametrize(
    ("setup", "cell", "named"),
    [
        ("", "from sci_ext import get_config\nretries = get_config().retry.max_attempts", "module sci_ext"),
        ("from sci_ext.core import CircuitBreaker", "state = CircuitBreaker('demo-a').state", "CircuitBreaker"),
        (
            "from sci_ext.core import get_security_manager\nsm = get_security_manager()",
            "n = len(sm.list_secrets())",
            "sm",
        ),
    ],
)
def test_a_cell_using_sci_ext_itself_runs_every_time_and_says_so(ip, capsys, setup, cell, named):
    # sci_ext's state lives outside the notebook's variables: a restored cell would skip a
    # configuration read, a breaker's state or a vault read that a plain run does.
    if setup:
        ip.run_cell(setup).raise_error()
    for _ in range(2):
        run(ip, cell).raise_error()
        assert SESSION.last is not None and SESSION.last.status == "uncached", SESSION.last
    err = capsys.readouterr().err
    assert err.count("uses sci_ext's own") == 1 and named in err, err  # once per cell
