"""``jupyter sci cache list|stats|clear``: the cell cache from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Add the ``cache`` verb group."""
    cache = subparsers.add_parser("cache", help="list, count and clear cached cells")
    verbs = cache.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    for verb, help_text, handler in (
        ("list", "every entry: name, key, size, created, hits", _list),
        ("stats", "hits, misses, ratio, entries, bytes", _stats),
    ):
        parser = verbs.add_parser(verb, help=help_text)
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument(
            "--backend", choices=("memory", "disk", "redis"), help="which store (default: cache.backend)"
        )
        parser.set_defaults(handler=handler)
    clear = verbs.add_parser("clear", help="remove the entries of NAME (or a key prefix), or all")
    clear.add_argument("target", nargs="?", metavar="NAME|KEY")
    clear.add_argument("--all", action="store_true", help="remove every entry and counter")
    clear.add_argument("--backend", choices=("disk", "redis"), help="which store (default: cache.backend)")
    clear.set_defaults(handler=_clear)


def _admin() -> Any:
    from ..core.cache import admin

    return admin


def _checked_backend(args: argparse.Namespace) -> str | None:
    from . import UsageFailure

    if getattr(args, "backend", None) == "memory":
        raise UsageFailure("the memory backend lives inside one kernel; use %sci_cache there")
    backend: str | None = args.backend
    return backend


def _list(args: argparse.Namespace) -> int:
    from . import UsageFailure

    backend = _checked_backend(args)
    try:
        if args.json:
            print(json.dumps([vars(e) for e in _admin().entries(backend)], indent=2))
        else:
            print(_admin().list_view(backend).text())
    except LookupError as exc:
        raise UsageFailure(exc.args[0]) from None
    return 0


def _stats(args: argparse.Namespace) -> int:
    from . import UsageFailure

    backend = _checked_backend(args)
    try:
        if args.json:
            print(json.dumps(_admin().stats(backend), indent=2))
        else:
            print(_admin().stats_view(backend).text())
    except LookupError as exc:
        raise UsageFailure(exc.args[0]) from None
    return 0


def _clear(args: argparse.Namespace) -> int:
    from . import UsageFailure

    if not args.all and not args.target:
        raise UsageFailure("cache clear needs NAME, KEY or --all")
    try:
        print(_admin().clear(args.target, args.all, args.backend))
    except LookupError as exc:
        raise UsageFailure(exc.args[0]) from None
    return 0
