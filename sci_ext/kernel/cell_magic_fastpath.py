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
"""

from __future__ import annotations

from typing import Any

from .state import KernelState

__all__ = ["register"]


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


def register(ipython: Any, state: KernelState) -> None:
    """Install the shortcut on ``ipython``'s transformer manager; removed on unload."""
    from IPython.core.inputtransformer2 import (
        EscapedCommand,
        HelpEnd,
        MagicAssign,
        SystemAssign,
        TransformerManager,
        cell_magic,
    )

    manager = getattr(ipython, "input_transformer_manager", None)
    if type(manager) is not TransformerManager or "transform_cell" in vars(manager):
        return  # a shell with its own manager, or already wrapped: leave it as it is
    defaults = ((MagicAssign, SystemAssign, EscapedCommand, HelpEnd), [cell_magic])
    if (tuple(manager.token_transformers), manager.line_transforms) != defaults:
        return
    manager.transform_cell = _fast_transform(manager, manager.transform_cell, defaults)  # type: ignore[method-assign]

    def remove() -> None:
        vars(manager).pop("transform_cell", None)

    state.on_close(remove)
