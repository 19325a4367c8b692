"""The differential corpus: public notebooks, trimmed to run offline in seconds (``corpus/``).

``corpus/corpus.toml`` lists each notebook: its file, the data files it needs, its upstream
edit and whether it is in the CI subset; ``corpus/SOURCES.md`` says where each came from.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .harness import Case, Edit, change_seed, edit_file, replace_in_cell

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"


def _edit(name: str, spec: dict[str, Any]) -> Edit:
    kind = spec.get("kind")
    why = spec.get("why", "")
    if kind == "replace":
        return replace_in_cell(spec["old"], spec["new"], why)
    if kind == "file":
        return edit_file(spec["path"], spec["old"], spec["new"], why)
    if kind == "seed":
        return change_seed(int(spec["old"]), int(spec["new"]), why)
    raise ValueError(
        f"{CORPUS_DIR / 'corpus.toml'}: notebook {name!r}: edit kind {kind!r} is not replace, file or seed"
    )


def load_corpus(subset: str = "all", names: list[str] | None = None) -> list[Case]:
    """The corpus cases: ``subset`` ``all``, ``quick`` or ``ci`` (flags in corpus.toml), or ``names``."""
    with open(CORPUS_DIR / "corpus.toml", "rb") as fh:
        manifest = tomllib.load(fh)
    cases = []
    for entry in manifest["notebook"]:
        name = entry["name"]
        if names and name not in names:
            continue
        if not names and subset != "all" and not entry.get(subset, False):
            continue
        cases.append(
            Case(
                name=name,
                notebook=CORPUS_DIR / entry["file"],
                edit=_edit(name, entry["edit"]),
                files=list(entry.get("files", [])),
                llm=bool(entry.get("llm", False)),
                cell_timeout=float(entry.get("timeout", 60)),
            )
        )
    if names and len(cases) != len(set(names)):
        missing = set(names) - {c.name for c in cases}
        raise ValueError(f"{CORPUS_DIR / 'corpus.toml'}: no notebook named {sorted(missing)}")
    return cases
