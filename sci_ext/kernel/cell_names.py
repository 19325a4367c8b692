"""ipykernel's file name of a cell, computed once per distinct cell text.

ipykernel names the code of every cell it runs after a murmur2 hash of the cell's text
(``XCachingCompiler.get_code_name`` -> ``ipykernel.compiler.get_file_name``), written in
pure Python: about 0.13 ms per KB of cell, as much as compiling it, on every run.  A
``%%guarded`` or ``%%cached`` cell pays it twice: IPython names the cell, then the magic
registers the body under the same text so that a traceback shows the lines as typed.

The name depends only on the text (and on ``IPYKERNEL_CELL_NAME``, which ipykernel reads on
every call; while it is set, every call goes to ipykernel), so :func:`memoize_code_names`
keeps the names of the last cells seen.  Installed at ``%load_ext`` in an ipykernel
kernel only (a terminal IPython names cells by a C hash and the cell number).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from .state import KernelState

__all__ = ["memoize_code_names", "register"]

#: Texts remembered; beyond that the memo starts again (a notebook has far fewer cells).
LIMIT = 512


def memoize_code_names(compiler: Any) -> Callable[[], None] | None:
    """Memoize ``compiler.get_code_name`` when it is ipykernel's; returns the undo, else None."""
    module = sys.modules.get("ipykernel.compiler")
    kind = getattr(module, "XCachingCompiler", None)
    if kind is None or not isinstance(compiler, kind) or "get_code_name" in vars(compiler):
        return None
    if type(compiler).get_code_name is not kind.get_code_name:
        return None  # a subclass names cells its own way
    original = compiler.get_code_name
    if "IPYKERNEL_CELL_NAME" not in os.environ and original("x", "a", 1) != original("x", "b", 2):
        return None  # this ipykernel names by more than the text: nothing to memoize
    names: dict[str, str] = {}

    def get_code_name(raw_code: str, transformed_code: str, number: int) -> str:
        if "IPYKERNEL_CELL_NAME" in os.environ:  # the debugger's fixed name, read on each call
            return str(original(raw_code, transformed_code, number))
        name = names.get(raw_code)
        if name is None:
            if len(names) >= LIMIT:
                names.clear()
            name = names[raw_code] = str(original(raw_code, transformed_code, number))
        return name

    compiler.get_code_name = get_code_name

    def undo() -> None:
        vars(compiler).pop("get_code_name", None)

    return undo


def register(ipython: Any, state: KernelState) -> None:
    """Memoize the cell names of ``ipython``'s compiler (ipykernel only); undone on unload."""
    undo = memoize_code_names(getattr(ipython, "compile", None))
    if undo is not None:
        state.on_close(undo)
