"""``jupyter sci ...`` / ``sci-ext ...``: the command line.

Each group of verbs lives in its own module with ``add_parser(subparsers)``;
:data:`COMMAND_MODULES` lists them.  Exit status: 0 success, 1 a failed check,
2 bad usage; errors go to stderr as one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._version import __version__
from ..core.errors import SciExtError

__all__ = ["COMMAND_MODULES", "CheckFailure", "UsageFailure", "main"]

#: One module per verb group; each defines ``add_parser(subparsers)``.
COMMAND_MODULES: list[str] = [
    "sci_ext.cli.config_cmd",
    "sci_ext.cli.cache_cmd",
    "sci_ext.cli.secret_cmd",
    "sci_ext.cli.apikey_cmd",
    "sci_ext.cli.audit_cmd",
    "sci_ext.cli.health_cmd",
    "sci_ext.cli.llm_cmd",
    "sci_ext.cli.deploy_cmd",
    "sci_ext.cli.hub_cmd",
    "sci_ext.cli.run_cmd",
]


class UsageFailure(Exception):
    """Bad usage: exit status 2."""


class CheckFailure(Exception):
    """A check failed (invalid config, broken audit chain): exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line instead of argparse's usage block.
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser(prog: str = "jupyter sci") -> argparse.ArgumentParser:
    """The full argument parser (every landed verb group)."""
    parser = _Parser(prog=prog, description="sci_ext: configuration, cache, secrets and health of research notebooks.")
    parser.add_argument("--version", action="version", version=f"sci_ext {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    _describe(sub)
    return parser


def _describe(subparsers: argparse._SubParsersAction) -> None:
    """Give every (sub)command's ``--help`` a description line: its one-line help from the list."""
    for action in subparsers._choices_actions:
        parser = subparsers.choices.get(action.dest)
        if parser is None:
            continue
        if not parser.description and action.help:
            parser.description = action.help[0].upper() + action.help[1:] + "."
        for child in parser._actions:
            if isinstance(child, argparse._SubParsersAction):
                _describe(child)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the command line; returns the exit status."""
    if prog is None:
        prog = "sci-ext" if sys.argv and sys.argv[0].endswith("sci-ext") else "jupyter sci"
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        result: int | None = args.handler(args)
        return result or 0
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    except UsageFailure as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (CheckFailure, SciExtError) as exc:
        print(f"{prog}: {type(exc).__name__ if isinstance(exc, SciExtError) else 'failed'}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file or directory that cannot be used: one line, not a traceback
        print(f"{prog}: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """Console-script entry point."""
    if any(arg == "--token" or arg.startswith("--token=") for arg in sys.argv):
        from .argv_scrub import scrub_argv_option

        scrub_argv_option("--token")  # review R5: as early as we can; --help says the rest
    raise SystemExit(main())
