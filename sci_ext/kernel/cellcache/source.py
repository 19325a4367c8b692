"""A cell magic's body as the user typed it: its cell number and its line numbers.

A cell magic receives its body without the ``%%magic`` line, while the cell
runs.  Compiled naively, a traceback names the wrong cell (IPython 9 counts the
running cell before it runs, so ``shell.execution_count`` is already the next
one) and every line number is one short.  :func:`compile_body` compiles the body
under the running cell's number, with line numbers shifted past the magic line,
and registers the typed text so a traceback shows the lines as typed.
"""

from __future__ import annotations

import ast
from typing import Any

__all__ = ["cell_number", "compile_body", "header_of"]


def cell_number(shell: Any) -> int:
    """The ``In[N]`` number of the cell that is running now."""
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    number = getattr(result, "execution_count", None)
    if isinstance(number, int):
        return number
    return int(shell.execution_count)


def header_of(shell: Any, body: str) -> str:
    """The text the user typed before ``body`` (the ``%%magic ...`` line), or ``''`` if unknown."""
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    raw = getattr(getattr(result, "info", None), "raw_cell", None)
    if not isinstance(raw, str):
        return ""
    lines = raw.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip().startswith("%%"):
            header = "".join(lines[: i + 1])
            rest = "".join(lines[i + 1 :])
            # Only when the body really is the rest of this cell (not a nested run_cell_magic call).
            if rest.rstrip("\n") == body.rstrip("\n"):
                return header if header.endswith("\n") else header + "\n"
            return ""
    return ""


def compile_body(shell: Any, body: str, source: str) -> tuple[str, ast.Module]:
    """Register the typed cell for tracebacks and parse ``source`` (the transformed body).

    Returns the filename to compile under and the AST with line numbers as typed
    (the ``%%magic`` line counted).
    """
    header = header_of(shell, body)
    number = cell_number(shell)
    shown = header + body if header else source
    filename = str(shell.compile.cache(shown, number, raw_code=shown))
    tree = ast.parse(source, filename)
    offset = header.count("\n")
    if offset:
        ast.increment_lineno(tree, offset)
    return filename, tree
