"""Every miss of a cell with a stored run says in one line what differs (issue 25, item 4)."""

from __future__ import annotations

import pytest
from cellcache_shell import run, shell_with_sci_ext, status


@pytest.fixture
def ip():
    yield from shell_with_sci_ext()


def test_a_changed_input_is_named_and_the_unchanged_ones_too(ip, capsys):
    ip.run_cell("df = [1, 2]\nx = 3\nmodel = 'm'").raise_error()
    cell = "%%cached train\nresult = (sum(df), x, model)"
    _, _, out = run(ip, cell, capsys)
    assert status() == "miss" and "ran:" not in out  # never run before: nothing to compare
    ip.run_cell("df = [1, 2, 3]").raise_error()
    _, _, out = run(ip, cell, capsys)
    assert status() == "miss"
    assert "[sci_ext] 'train' ran: input df changed since the stored run (model and x unchanged)" in out


def test_an_unseeded_global_numpy_random_state_is_named(ip, capsys):
    ip.run_cell("import numpy as np").raise_error()
    cell = "%%cached noise\nsample = np.random.rand(3)"
    run(ip, cell, capsys)
    _, _, out = run(ip, cell, capsys)
    assert status() == "miss"
    assert "the global numpy random state is not seeded, so this cell runs after every restart" in out


def test_an_input_changing_on_every_run_is_named_with_ignore(ip, capsys):
    ip.run_cell("tracker = {'calls': 0}\ndef ask(q):\n    tracker['calls'] += 1\n    return q.upper()").raise_error()
    cell = "%%cached llm\nanswer = ask('hi')"
    outs = []
    for _ in range(4):
        outs.append(run(ip, cell, capsys)[2])
        assert status() == "miss"
    assert "input tracker changed" in outs[1] and "--ignore" not in outs[2]
    # The first run has nothing to compare with; three misses in a row then name it.
    assert "tracker changed on each of the last 3 runs" in outs[3] and "--ignore tracker" in outs[3], outs[3]
    run(ip, "%%cached llm --ignore tracker\nanswer = ask('hi')", capsys)
    run(ip, "%%cached llm --ignore tracker\nanswer = ask('hi')", capsys)
    assert status() == "hit"


def test_quiet_silences_explanations(ip, capsys):
    ip.run_cell("v = 1").raise_error()
    run(ip, "%%cached q --quiet\nw = v + 1", capsys)
    ip.run_cell("v = 2").raise_error()
    _, _, out = run(ip, "%%cached q --quiet\nw = v + 1", capsys)
    assert status() == "miss" and "ran:" not in out


def test_why_shows_each_part_of_the_last_run(ip, capsys):
    ip.run_cell("a = 1\nb = 2").raise_error()
    run(ip, "%%cached pair\nc = a + b", capsys)
    ip.run_cell("a = 5").raise_error()
    run(ip, "%%cached pair\nc = a + b", capsys)
    _, out, _ = run(ip, "%sci_cache why pair", capsys)
    assert "input a changed" in out
    lines = [line for line in out.splitlines() if line.startswith(("input a", "input b"))]
    assert any(line.endswith("changed") for line in lines if line.startswith("input a"))
    assert any(line.endswith("same") for line in lines if line.startswith("input b"))
    result, _, _ = run(ip, "%sci_cache why never-ran", capsys)
    assert result.error_in_exec is not None and "no run of never-ran" in str(result.error_in_exec)


def test_a_corrupt_note_is_a_warning_and_a_miss_never_an_exception(ip, capsys):
    from sci_ext.core.cache.admin import open_store
    from sci_ext.kernel.cellcache import explain

    ip.run_cell("k = 1").raise_error()
    run(ip, "%%cached broken\nm = k * 2", capsys)
    open_store().set_note(explain.note_key("name:broken"), "{not json")
    ip.run_cell("k = 2").raise_error()
    result, _, err = run(ip, "%%cached broken\nm = k * 2", capsys)
    assert result.error_in_exec is None and status() == "miss" and ip.user_ns["m"] == 4
    assert "run note of this cell is corrupt" in err
    run(ip, "%%cached broken\nm = k * 2", capsys)
    assert status() == "hit"
