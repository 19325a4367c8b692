"""sci_ext.kernel.cell_names: ipykernel's own cell names (the oracle), computed once per text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipykernel.compiler import XCachingCompiler, get_file_name

from sci_ext.kernel.cell_names import LIMIT, memoize_code_names


@pytest.fixture
def compiler():
    compiler = XCachingCompiler()
    undo = memoize_code_names(compiler)
    assert undo is not None
    yield compiler
    undo()
    assert "get_code_name" not in vars(compiler)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=60), min_size=1, max_size=8), number=st.integers(0, 10_000))
def test_names_are_ipykernels(texts, number):
    compiler = XCachingCompiler()
    undo = memoize_code_names(compiler)
    try:
        for text in texts + texts:  # each text twice: the second is a memo hit
            assert compiler.get_code_name(text, "transformed " + text, number) == get_file_name(text)
    finally:
        undo()  # type: ignore[misc]


def test_a_text_is_hashed_once(compiler, monkeypatch):
    import ipykernel.compiler as ipc

    calls: list[str] = []
    real = ipc.murmur2_x86
    monkeypatch.setattr(ipc, "murmur2_x86", lambda data, seed: calls.append(data) or real(data, seed))
    first = compiler.cache("x = 1\n", 1, raw_code="%%guarded\nx = 1\n")
    again = compiler.cache("%%guarded\nx = 1\n", 2, raw_code="%%guarded\nx = 1\n")
    assert first == again and calls == ["%%guarded\nx = 1\n"]
    assert compiler._filename_map[first] == 2  # the cell number is still updated on each call


def test_the_debuggers_fixed_name_is_read_on_every_call(compiler, monkeypatch):
    name = compiler.get_code_name("y = 2", "y = 2", 1)
    monkeypatch.setenv("IPYKERNEL_CELL_NAME", "/tmp/fixed.py")
    assert compiler.get_code_name("y = 2", "y = 2", 1) == "/tmp/fixed.py"
    monkeypatch.delenv("IPYKERNEL_CELL_NAME")
    assert compiler.get_code_name("y = 2", "y = 2", 1) == name


def test_the_memo_is_bounded(compiler):
    for i in range(LIMIT + 10):
        assert compiler.get_code_name(f"c{i}", "", i) == get_file_name(f"c{i}")
    memo = compiler.get_code_name.__closure__
    sizes = [len(cell.cell_contents) for cell in memo if isinstance(cell.cell_contents, dict)]
    assert sizes and max(sizes) <= LIMIT


def test_other_compilers_are_left_alone():
    from IPython.core.compilerop import CachingCompiler

    assert memoize_code_names(CachingCompiler()) is None
    assert memoize_code_names(None) is None

    class Own(XCachingCompiler):
        def get_code_name(self, raw_code, transformed_code, number):
            return f"<own {number}>"

    assert memoize_code_names(Own()) is None
