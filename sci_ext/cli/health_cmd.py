"""``jupyter sci health``: run the health checks here; exit 1 when one fails.

``--json`` prints the report as JSON; ``--check NAME`` (repeatable) runs only those
checks; ``--timeout S`` bounds each check.  Degraded checks do not change the exit
status (a warning, not a failure).  The ``--url`` form (ask a running server's
``/sci/health``) comes with the server extension.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Add the ``health`` verb."""
    health = subparsers.add_parser(
        "health",
        help="run the health checks; exit 1 when one fails",
        epilog="exit status: 0 every check ok or degraded; 1 a check failing (with --url also: the server "
        "unreachable or refusing the token); 2 bad usage",
    )
    health.add_argument("--json", action="store_true", help="print the report as JSON")
    health.add_argument("--check", action="append", metavar="NAME", help="run only this check (repeatable)")
    health.add_argument("--timeout", type=float, metavar="SECONDS", help="bound on each check")
    from .health_url import add_url_arguments

    add_url_arguments(health)
    health.set_defaults(handler=_health)


def _health(args: argparse.Namespace) -> int:
    from ..core.telemetry.health import run_health_checks
    from . import UsageFailure

    if getattr(args, "url", None):
        from .health_url import run_url

        return run_url(args)
    if args.timeout is not None and not args.timeout > 0:
        raise UsageFailure(f"--timeout must be > 0 seconds, got {args.timeout}")
    try:
        report = run_health_checks(args.check, timeout=args.timeout)
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None
    print(json.dumps(report.as_dict(), indent=2) if args.json else str(report))
    return 1 if report.status == "failing" else 0
