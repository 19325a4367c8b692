"""Print the configuration reference (markdown) that docs/config-reference.md holds.

``tests/test_docs.py`` checks that docs/config-reference.md contains exactly this output, so the
reference cannot drift from the dataclasses.
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


if __name__ == "__main__":
    print(reference(), end="")
