"""The settings table: HTML in notebooks (escaped), aligned text in terminals."""

from __future__ import annotations

from sci_ext._table import Table


def test_html_is_escaped_and_text_is_aligned():
    table = Table(["key", "value"], [["a.b", "<script>"], ["long.key.name", None], ["flag", True]], title="T")
    html = table._repr_html_()
    assert "&lt;script&gt;" in html and "<script>" not in html and "<caption" in html
    lines = repr(table).splitlines()
    assert lines[0] == "T"
    assert lines[1].index("value") == lines[3].index("<script>") == lines[4].index("none")
    assert lines[5].split() == ["flag", "true"]


def test_pretty_printer_uses_the_text_form():
    from IPython.lib.pretty import pretty

    assert pretty(Table(["k"], [["v"]])) == repr(Table(["k"], [["v"]]))
