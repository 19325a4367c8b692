"""A cell magic's cell skips IPython's token transforms, whose result it cannot change.

IPython turns a cell that starts with ``%%name line`` into the single line
``get_ipython().run_cell_magic('name', 'line', 'body')`` (its ``cell_magic`` line
transform: three ``repr`` strings), then tokenizes that line again to look for
``x = %magic``, ``!cmd``, ``%magic`` and ``obj?`` (its token transforms).  None of
them can match the line ``cell_magic`` built: it starts with a name, holds no ``=``
outside its strings and ends with ``)``.  Tokenizing it costs as much as a whole
``x = 1`` cell's transformation, on every ``%%guarded``, ``%%cached`` or ``%%time``
cell.

:func:`register` wraps the shell's ``input_transformer_manager.transform_cell``: the
same cleanup and line transforms, in the same order, then the token transforms only
when the cell was not a cell magic.  The transformed cell is therefore exactly
IPython's (``In``, ``_ih``, history, tracebacks and the cell cache's keys are
unchanged; ``tests/kernel/test_cell_magic_fastpath.py`` checks it against IPython's own
transformation as the oracle).  The shortcut is off when another extension changed
the token or line transforms: their output is no longer known.

:func:`transform_body` is the same idea for the body a cell magic transforms again
(``%%guarded`` runs ``%magics`` and ``!commands`` inside its cell): a body with no
``%``, ``!``, ``?`` and no line starting with ``,`` ``;`` or ``/`` holds nothing the
token transforms look for, so it is not tokenized for them.
"""

from __future__ import annotations

import re
from typing import Any

from .state import KernelState

__all__ = ["register", "transform_body"]

#: What IPython's token transforms look for: ``%`` (``x = %magic``, ``%magic``), ``!``
#: (``x = !cmd``, ``!cmd``), ``?`` (``obj?``), and a line that starts with ``,`` ``;`` or
#: ``/`` (autocall escapes).  Text with none of them cannot be changed by them.  (A
#: superset: the characters may sit in strings or comments; then the tokens decide.)
#: Compiled at first use: compiling a pattern at import would weigh on ``%load_ext``.
TRANSFORMABLE = r"[%!?]|^\s*[,;/]"


def _fast_transform(manager: Any, original: Any, defaults: tuple[Any, ...]) -> Any:
    from IPython.core.inputtransformer2 import cell_magic

    def transform_cell(cell: str) -> str:
        # Only cells that start with %% (after blank lines) can take the shortcut.
        if "%%" not in cell or (tuple(manager.token_transformers), manager.line_transforms) != defaults:
            return original(cell)
        if not cell.endswith("\n"):
            cell += "\n"
        lines = cell.splitlines(keepends=True)
        for transform in manager.cleanup_transforms:
            lines = transform(lines)
        if not lines or not lines[0].startswith("%%"):
            return "".join(manager.do_token_transforms(cell_magic(lines)))
        transformed = cell_magic(lines)
        if transformed is lines:  # %%name? : help, left to the token transforms (HelpEnd)
            return "".join(manager.do_token_transforms(lines))
        return "".join(transformed)

    return transform_cell


def transform_body(shell: Any, body: str) -> str:
    """``shell.transform_cell(body)``, without tokenizing a body the token transforms cannot change.

    A cell magic transforms its body the way IPython transforms a cell (``%%guarded``
    does, to run ``%magics`` and ``!commands`` inside it): a second full pass in the same
    cell.  The same steps in the same order as ``InteractiveShell.transform_cell`` (the
    oracle in ``tests/kernel/test_cell_magic_fastpath.py``); only the token transforms are
    skipped when the text holds nothing they look for (see :data:`TRANSFORMABLE`).  Then a
    body IPython's tokenizer refuses (an unindent to no outer level) is returned as it is and
    fails where it is compiled; ``%%guarded`` then asks IPython, so the user sees its error.
    """
    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.core.interactiveshell import InteractiveShell

    manager = getattr(shell, "input_transformer_manager", None)
    if (
        type(manager) is not TransformerManager
        or getattr(type(shell), "transform_cell", None) is not InteractiveShell.transform_cell
        or (tuple(manager.token_transformers), manager.line_transforms) != _defaults()
    ):
        return str(shell.transform_cell(body))
    text = body if body.endswith("\n") else body + "\n"
    lines = text.splitlines(keepends=True)
    for transform in manager.cleanup_transforms + manager.line_transforms:
        lines = transform(lines)
    cell = "".join(lines)
    if re.search(TRANSFORMABLE, cell, re.MULTILINE):  # re caches the compiled pattern
        cell = "".join(manager.do_token_transforms(lines))
    # The rest of InteractiveShell.transform_cell: the dynamic transforms of one-line input.
    if len(cell.splitlines()) == 1:
        with shell.builtin_trap:
            cell = shell.prefilter_manager.prefilter_lines(cell) + "\n"
    lines = cell.splitlines(keepends=True)
    for transform in shell.input_transformers_post:
        lines = transform(lines)
    return "".join(lines)


def _defaults() -> tuple[tuple[Any, ...], list[Any]]:
    """IPython's own token transforms and line transforms (what the shortcuts know)."""
    from IPython.core.inputtransformer2 import EscapedCommand, HelpEnd, MagicAssign, SystemAssign, cell_magic

    return (MagicAssign, SystemAssign, EscapedCommand, HelpEnd), [cell_magic]


def register(ipython: Any, state: KernelState) -> None:
    """Install the shortcut on ``ipython``'s transformer manager; removed on unload."""
    from IPython.core.inputtransformer2 import TransformerManager

    manager = getattr(ipython, "input_transformer_manager", None)
    if type(manager) is not TransformerManager or "transform_cell" in vars(manager):
        return  # a shell with its own manager, or already wrapped: leave it as it is
    defaults = _defaults()
    if (tuple(manager.token_transformers), manager.line_transforms) != defaults:
        return
    manager.transform_cell = _fast_transform(manager, manager.transform_cell, defaults)  # type: ignore[method-assign]

    def remove() -> None:
        vars(manager).pop("transform_cell", None)

    state.on_close(remove)
