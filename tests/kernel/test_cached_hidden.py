"""Hidden inputs: state a cell reads without naming it never gives a silent stale hit."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest
from test_cached_inprocess import ip, run  # noqa: F401 - the in-process shell fixture

from sci_ext.kernel.cellcache.session import SESSION


def status() -> str:
    return SESSION.last.status


def test_random_global_state_is_keyed_and_advanced(ip):  # noqa: F811
    cell = "%%cached\nimport random\nx_9a = random.random()"
    random.seed(1)
    run(ip, cell)
    assert status() == "miss"
    first = ip.user_ns["x_9a"]
    random.seed(2)
    run(ip, cell)
    assert status() == "miss", "another generator state must not hit"
    assert ip.user_ns["x_9a"] != first
    random.seed(1)
    run(ip, cell)
    assert status() == "hit" and ip.user_ns["x_9a"] == first
    # The hit leaves the generator where running the cell would have.
    random.seed(1)
    random.random()
    expected = random.random()
    random.seed(1)
    run(ip, cell)
    assert status() == "hit" and random.random() == expected


def test_random_function_imported_by_name(ip):  # noqa: F811
    cell = "%%cached\nfrom random import choice\npick_9a = choice(range(1000))"
    random.seed(3)
    run(ip, cell)
    random.seed(4)
    run(ip, cell)
    assert status() == "miss"


def test_numpy_global_state_is_keyed(ip):  # noqa: F811
    ip.user_ns["np"] = np
    cell = "%%cached\nsample_9a = np.random.rand(3)"
    np.random.seed(0)
    run(ip, cell)
    first = ip.user_ns["sample_9a"].copy()
    np.random.seed(1)
    run(ip, cell)
    assert status() == "miss" and not np.array_equal(ip.user_ns["sample_9a"], first)
    np.random.seed(0)
    run(ip, cell)
    assert status() == "hit" and np.array_equal(ip.user_ns["sample_9a"], first)
    expected_next = (np.random.seed(0), np.random.rand(3), np.random.rand())[2]
    np.random.seed(0)
    run(ip, cell)
    assert np.random.rand() == expected_next


def test_seeded_cell_does_not_key_on_state(ip):  # noqa: F811
    cell = "%%cached\nimport numpy as np\nnp.random.seed(7)\nseeded_9a = np.random.rand(2)"
    run(ip, cell)
    np.random.seed(123)
    run(ip, cell)
    assert status() == "hit"


def test_own_generator_is_not_global_state(ip):  # noqa: F811
    cell = "%%cached\nimport numpy as np\nown_9a = np.random.default_rng(0).random(2)"
    run(ip, cell)
    np.random.seed(99)
    random.seed(99)
    run(ip, cell)
    assert status() == "hit"


def test_helper_function_drawing_from_random(ip):  # noqa: F811
    run(ip, "import random\ndef draw_9a():\n    return random.random()")
    cell = "%%cached\nd_9a = draw_9a()"
    random.seed(5)
    run(ip, cell)
    random.seed(6)
    run(ip, cell)
    assert status() == "miss"


def test_globals_with_a_literal_name_is_keyed(ip):  # noqa: F811
    ip.user_ns["base_9a"] = 2
    cell = "%%cached\ntwice_9a = globals()['base_9a'] * 2"
    run(ip, cell)
    ip.user_ns["base_9a"] = 5
    run(ip, cell)
    assert status() == "miss" and ip.user_ns["twice_9a"] == 10


def test_eval_and_exec_of_literal_strings_are_keyed(ip):  # noqa: F811
    ip.user_ns["base_9a"] = 2
    for cell in ("%%cached\ne_9a = eval('base_9a + 1')", "%%cached\nexec('e_9a = base_9a + 1')"):
        ip.user_ns["base_9a"] = 2
        run(ip, cell)
        ip.user_ns["base_9a"] = 7
        run(ip, cell)
        assert status() == "miss" and ip.user_ns["e_9a"] == 8, cell


@pytest.mark.parametrize(
    ("cell", "construct"),
    [
        ("%%cached\nname_9a = 'base_9a'\nv_9a = globals()[name_9a]", "globals()"),
        ("%%cached\nv_9a = vars()['base' + '_9a']", "vars()"),
        ("%%cached\nexpr_9a = 'base_9a * 3'\nv_9a = eval(expr_9a)", "eval() of a computed string"),
        ("%%cached\nexec(code_9a)", "exec() of a computed string"),
    ],
)
def test_unknowable_reads_run_uncached_with_one_line(ip, capsys, cell, construct):  # noqa: F811
    ip.user_ns["base_9a"] = 2
    ip.user_ns["code_9a"] = "v_9a = base_9a"
    run(ip, cell)
    err = capsys.readouterr().err
    assert status() == "uncached" and ip.user_ns["v_9a"] in (2, 6)
    lines = [line for line in err.splitlines() if "not cached" in line]
    assert len(lines) == 1 and construct in lines[0], err
    ip.user_ns["base_9a"] = 3
    run(ip, cell)
    assert status() == "uncached" and ip.user_ns["v_9a"] in (3, 9)


def test_reassigned_module_function_is_a_miss(ip):  # noqa: F811
    ip.user_ns["statistics"] = statistics
    cell = "%%cached\nm_9a = statistics.mean([1, 2, 3])"
    original = statistics.mean
    try:
        run(ip, cell)
        assert ip.user_ns["m_9a"] == 2
        run(ip, "statistics.mean = lambda xs: 42")
        run(ip, cell)
        assert status() == "miss" and ip.user_ns["m_9a"] == 42
    finally:
        statistics.mean = original


def test_reassigned_module_constant_is_a_miss(ip):  # noqa: F811
    ip.user_ns["math"] = math
    cell = "%%cached\ncircle_9a = math.pi * 2"
    original = math.pi
    try:
        run(ip, cell)
        math.pi = 3.0
        run(ip, cell)
        assert status() == "miss" and ip.user_ns["circle_9a"] == 6.0
    finally:
        math.pi = original
    run(ip, cell)
    assert status() == "hit" and ip.user_ns["circle_9a"] == 2 * original
