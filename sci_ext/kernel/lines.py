"""Magic lines as users write them: trailing ``# comments`` and shell-like quotes.

IPython hands a line magic everything after its name, a comment included, and
the README's own examples end in one (``%sci_config rag  # every rag setting``).
"""

from __future__ import annotations

import os

from IPython.core.error import UsageError
from IPython.utils.process import arg_split

__all__ = ["split_line", "strip_comment"]


def strip_comment(line: str) -> str:
    """``line`` without a trailing comment: from a ``#`` that starts a word, outside quotes.

    A ``#`` inside a word or inside quotes stays (``redis://:pa#ss@host``, ``"#1"``).

    >>> strip_comment("rag.top_k=8   # more context")
    'rag.top_k=8'
    >>> strip_comment("url=redis://:pa#ss@host --note '# kept'")
    "url=redis://:pa#ss@host --note '# kept'"
    """
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def split_line(line: str, magic: str) -> list[str]:
    """The words of a magic line: comment stripped, quotes grouping words as in a shell (as ``%run``)."""
    try:
        return arg_split(strip_comment(line), posix=os.name == "posix")
    except ValueError as exc:  # an unbalanced quote
        raise UsageError(f"{magic}: {exc}") from None
