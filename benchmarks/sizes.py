"""The sizes every benchmark script runs at: full (the figures to trust), ``--quick`` (small,
still measuring; ``scripts/bench_regress.py`` records it) and ``--smoke`` (one pass at the
smallest: the smoke tests check that the script runs and prints every line)."""

from __future__ import annotations

import argparse
from typing import TypeVar

T = TypeVar("T")


def add_size_options(parser: argparse.ArgumentParser, quick_help: str = "small sizes") -> None:
    """``--quick`` and ``--smoke``."""
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="one pass at the smallest sizes: checks the script runs and prints every line (figures mean nothing)",
    )


def by_size(args: argparse.Namespace, *, smoke: T, quick: T, full: T) -> T:
    """The value for the size ``args`` asked for."""
    return smoke if args.smoke else quick if args.quick else full


def size_name(args: argparse.Namespace) -> str:
    """``smoke``, ``quick`` or ``full``, for the benchmark's header line."""
    return by_size(args, smoke="smoke", quick="quick", full="full")
