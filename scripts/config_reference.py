"""Print the configuration reference (markdown) that docs/config-reference.md holds.

``tests/unit/test_docs.py`` checks that docs/config-reference.md contains exactly this output, so the
reference cannot drift from the dataclasses.  ``--write`` replaces the table in that page.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PLACEHOLDERS = {
    "XDG_CONFIG_HOME": "$XDG_CONFIG_HOME",
    "XDG_CACHE_HOME": "$XDG_CACHE_HOME",
    "XDG_STATE_HOME": "$XDG_STATE_HOME",
    "XDG_DATA_HOME": "$XDG_DATA_HOME",
}


def reference() -> str:
    """The markdown table of every built-in setting except the ``bfts`` section."""
    for var, placeholder in PLACEHOLDERS.items():
        os.environ[var] = placeholder
    from sci_ext.core.config.manager import registered_sections
    from sci_ext.core.config.schema import leaf_fields, type_name

    lines = ["| key | type | default | range / choices | meaning |", "|---|---|---|---|---|"]
    for section, cls in registered_sections().items():
        if section == "bfts":
            continue
        for name, spec in leaf_fields(cls).items():
            limits = []
            if spec.choices:
                limits.append(", ".join(f"`{c}`" for c in spec.choices))
            if spec.min is not None:
                limits.append(f">= {spec.min:g}")
            if spec.max is not None:
                limits.append(f"<= {spec.max:g}")
            default = "none" if spec.default is None else repr(spec.default).strip("'")
            lines.append(
                f"| `{section}.{name}` | {type_name(spec.type)} | `{default}` | {'; '.join(limits)} | {spec.doc} |"
            )
    return "\n".join(lines) + "\n"


def write(page: Path) -> None:
    """Replace the table in ``page`` (from its ``| key |`` header to the first line after it
    that is not a table row) with :func:`reference`; the text around it stays."""
    lines = page.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("| key |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    page.write_text("".join(lines[:start]) + reference() + "".join(lines[end:]))


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write(Path(__file__).resolve().parents[1] / "docs" / "config-reference.md")
    else:
        print(reference(), end="")
