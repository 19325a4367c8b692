"""The in-process IPython shell with sci_ext loaded, for cell-cache tests (imported by bare name)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def shell_with_sci_ext() -> Iterator[Any]:
    """The global in-process shell, sci_ext loaded; names a test binds are removed afterwards."""
    from IPython.testing.globalipapp import get_ipython as start_ipython

    from sci_ext.kernel import KernelState

    shell = start_ipython()
    if not KernelState.get(shell).loaded:
        shell.run_line_magic("load_ext", "sci_ext")
    keep = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - keep:
        del shell.user_ns[name]


def status() -> str:
    """hit | miss | uncached of the last cached cell."""
    from sci_ext.kernel.cellcache.session import SESSION

    assert SESSION.last is not None
    return SESSION.last.status


def run(shell: Any, code: str, capsys: Any) -> tuple[Any, str, str]:
    """Run a cell; (result, stdout, stderr)."""
    capsys.readouterr()
    result = shell.run_cell(code)
    out = capsys.readouterr()
    return result, out.out, out.err
