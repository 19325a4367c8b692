"""The cell-magic shortcut transforms every cell exactly as IPython does (IPython is the oracle)."""

from __future__ import annotations

import ast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inprocess_shell import freshly_loaded_shell
from IPython.core.inputtransformer2 import TransformerManager
from IPython.core.interactiveshell import InteractiveShell

from sci_ext.kernel import KernelState


@pytest.fixture
def ip():
    shell = freshly_loaded_shell()
    yield shell
    if KernelState.get(shell).loaded:
        shell.run_line_magic("unload_ext", "sci_ext")


def oracle(cell: str) -> str:
    """IPython's own static transformation (a fresh manager: no extension touched it)."""
    return TransformerManager().transform_cell(cell)


FIRST_LINES = st.sampled_from(
    [
        "%%guarded",
        "%%guarded fetch --retries 2 --fallback r = None",
        "%%time",
        "%%cached --key a=1",
        "%%guarded?",
        "%%guarded??",
        "%%bash",
        "%%",
        "%% guarded",
        "%%guarded $name {n}",
        "  %%guarded",
        "\n\n%%guarded",
        ">>> %%guarded",
        "In [1]: %%guarded",
        "x = 1",
        "%time x = 1",
        "x = %who_ls",
        "!ls %%x",
        "s = '%%guarded'",
        "obj?",
    ]
)
BODY_LINES = st.lists(
    st.sampled_from(
        [
            "x = 1",
            "x",
            "x;",
            "!echo hi",
            "%time y = 2",
            "z = !ls",
            "w = %who_ls",
            "obj?",
            "s = '''a",
            "b'''",
            "  indented = 1",
            "d = {'%%': \"'\\n\"}",
            "%%guarded",
            "",
            "# comment",
            "print('é\\t\\\\')",
        ]
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=FIRST_LINES, body=BODY_LINES, end=st.sampled_from(["", "\n", "\n\n"]))
def test_same_transformation_as_ipython(ip, first, body, end):
    cell = "\n".join([first, *body]) + end
    try:
        expected = oracle(cell)
    except SyntaxError as exc:  # the shortcut must raise the same error
        with pytest.raises(SyntaxError) as caught:
            ip.input_transformer_manager.transform_cell(cell)
        assert str(caught.value) == str(exc)
        return
    assert ip.input_transformer_manager.transform_cell(cell) == expected
    assert ip.transform_cell(cell) == InteractiveShell.transform_cell(ip, cell)


def test_shortcut_installed_and_removed(ip):
    manager = ip.input_transformer_manager
    assert "transform_cell" in vars(manager)  # installed by %load_ext
    ip.run_line_magic("unload_ext", "sci_ext")
    assert "transform_cell" not in vars(manager)
    ip.run_line_magic("load_ext", "sci_ext")
    assert "transform_cell" in vars(manager)


def test_another_token_transform_turns_the_shortcut_off(ip):
    """An extension's own token transform sees the cell-magic line again, as without sci_ext."""
    manager = ip.input_transformer_manager
    seen: list[str] = []

    class Spy:
        priority = 100

        def __init__(self, start):
            pass

        @classmethod
        def find(cls, tokens_by_line):
            seen.append("".join(t.string for t in tokens_by_line[0]))
            return None

    manager.token_transformers.append(Spy)
    try:
        cell = "%%guarded\nx = 1\n"
        assert manager.transform_cell(cell) == oracle(cell)
        assert seen and "run_cell_magic" in seen[-1]
    finally:
        manager.token_transformers.remove(Spy)


def test_guarded_cell_runs_through_the_shortcut(ip, capsys):
    ip.user_ns.pop("y", None)
    result = ip.run_cell("%%guarded\ny = 41 + 1\ny", store_history=True)
    assert result.success and result.result == 42
    assert ip.user_ns["y"] == 42
    assert ip.user_ns["_ih"][-1] == oracle("%%guarded\ny = 41 + 1\ny").rstrip("\n")


BODY_TEXT = st.lists(
    st.sampled_from(
        [
            "x = 1",
            "x",
            "y = x % 3",
            "print('100%')",
            "!echo hi",
            "files = !ls",
            "w = %who_ls",
            "%time z = 1",
            "obj?",
            "x ! = 1",
            ",print a b",
            ";print a b",
            "/print 1",
            "  /print 1",
            "\f/print 1",
            "total = (1,",
            "  2)",
            "r = 6 / 3",
            "s = '''",
            "/ inside a string",
            "'''",
            "# a comment?",
            "if x:",
            "    pass",
            "",
            "len",
        ]
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=BODY_TEXT, newline=st.booleans(), autocall=st.sampled_from([0, 1, 2]))
def test_transform_body_is_ipythons_transform_cell(ip, lines, newline, autocall):
    """The body shortcut returns what IPython's own shell.transform_cell returns (the oracle)."""
    from sci_ext.kernel.cell_magic_fastpath import transform_body

    body = "\n".join(lines) + ("\n" if newline else "")
    saved = ip.autocall
    ip.autocall = autocall  # the dynamic (prefilter) transforms of one-line input depend on it
    try:
        try:
            expected = InteractiveShell.transform_cell(ip, body)
        except SyntaxError as exc:
            # IPython's tokenizer refused the body: the shortcut raises the same error, or (it
            # skipped the tokens) returns a text that does not compile either.
            try:
                returned = transform_body(ip, body)
            except SyntaxError as caught:
                assert str(caught) == str(exc)
                return
            with pytest.raises(SyntaxError):
                ast.parse(returned)
            return
        assert transform_body(ip, body) == expected
    finally:
        ip.autocall = saved


def test_transform_body_skips_the_tokens_only_when_nothing_can_match(ip, monkeypatch):
    from sci_ext.kernel.cell_magic_fastpath import transform_body

    manager = ip.input_transformer_manager
    calls: list[list[str]] = []
    real = manager.do_token_transforms
    monkeypatch.setattr(manager, "do_token_transforms", lambda lines: calls.append(lines) or real(lines))
    assert transform_body(ip, "a = 1\nb = a * 2\n") == "a = 1\nb = a * 2\n" and calls == []
    assert transform_body(ip, "a = 1\nb = %who_ls\n") == "a = 1\nb = get_ipython().run_line_magic('who_ls', '')\n"
    assert len(calls) == 1
