"""Every sci_ext magic answers ``--help`` (and ``-h``) and ``%magic?``, in the in-process shell.

The oracle is IPython's own inspector: ``--help`` prints what ``%magic?`` shows
(the usage ``magic_arguments`` builds from the real parser, then the docstring),
and runs nothing.
"""

from __future__ import annotations

import pytest

MAGICS = [
    ("line", "sci_cache"),
    ("line", "sci_config"),
    ("line", "sci_dashboard"),
    ("line", "sci_health"),
    ("line", "sci_llm"),
    ("line", "sci_secret"),
    ("cell", "cached"),
    ("cell", "guarded"),
]


@pytest.fixture
def ip():
    from IPython.testing.globalipapp import get_ipython as start_ipython

    shell = start_ipython()
    shell.run_line_magic("load_ext", "sci_ext")
    yield shell
    shell.run_line_magic("unload_ext", "sci_ext")


def test_the_list_is_every_sci_ext_magic(ip) -> None:
    tables = ip.magics_manager.magics
    found = {
        (kind, n) for kind in ("line", "cell") for n in tables[kind] if n.startswith(("sci_", "cached", "guarded"))
    }
    assert found == set(MAGICS)


@pytest.mark.parametrize(("kind", "name"), MAGICS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_runs_nothing(ip, capsys, kind: str, name: str, flag: str) -> None:
    ip.user_ns.pop("ran", None)
    prefix = "%%" if kind == "cell" else "%"
    result = ip.run_cell(f"{prefix}{name} {flag}" + ("\nran = True" if kind == "cell" else ""))
    out = capsys.readouterr().out
    assert result.success, result.error_in_exec
    assert out.startswith(f"{prefix}{name} ") or out.startswith(f"{prefix}{name}\n"), out[:200]
    assert "usage" not in out.lower()[:20] and len(out.splitlines()) > 3, out
    assert "ran" not in ip.user_ns  # the cell body never ran
    # The same text %magic? shows (IPython's inspector over the magic's docstring).
    info = ip.object_inspect_text(f"{prefix}{name}")
    first_option = next(line for line in out.splitlines()[1:] if line.strip().startswith("-"))
    assert first_option.strip() in info, (first_option, info[:500])


def test_help_after_other_options_and_not_inside_fallback(ip, capsys) -> None:
    assert ip.run_cell("%sci_dashboard --interval 3 --help").success
    assert capsys.readouterr().out.startswith("%sci_dashboard")
    ip.run_cell("%%guarded --retries 0 --fallback print('see --help')\nraise ValueError('x')")
    captured = capsys.readouterr()
    assert "see --help" in captured.out and not captured.out.startswith("%%guarded")


def test_unload_restores_the_magics(ip) -> None:
    ip.run_line_magic("unload_ext", "sci_ext")
    assert "sci_config" not in ip.magics_manager.magics["line"]
    ip.run_line_magic("load_ext", "sci_ext")
    ip.run_line_magic("sci_config", "--help")  # the first use loads the real magic (sci_ext.kernel.lazy)
    assert getattr(ip.magics_manager.magics["line"]["sci_config"], "_sci_ext_help", False)
