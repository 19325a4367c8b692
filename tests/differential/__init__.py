"""Differential testing of ``%%cached`` against plain runs (see :mod:`differential.harness`).

Import as ``from differential import run_case, load_corpus`` (``tests/`` is on ``sys.path``).
"""

from .corpus import CORPUS_DIR, load_corpus
from .harness import Case, CaseReport, Edit, Finding, change_seed, edit_file, replace_in_cell, run_case, summarise

__all__ = [
    "CORPUS_DIR",
    "Case",
    "CaseReport",
    "Edit",
    "Finding",
    "change_seed",
    "edit_file",
    "load_corpus",
    "replace_in_cell",
    "run_case",
    "summarise",
]
