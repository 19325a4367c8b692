"""``%sci_health``: run the health checks and show them as a table.

``%sci_health`` runs every check; ``%sci_health cache_dir disk`` runs those;
``--json`` prints the report as JSON.  The table is HTML in a notebook and text in a
terminal (the report object has both representations).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .lines import strip_comment
from .state import KernelState

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["HealthMagics", "register"]


@magics_class
class HealthMagics(Magics):
    """The ``%sci_health`` magic."""

    @magic_arguments()
    @argument("checks", nargs="*", help="names of the checks to run (default: all)")
    @argument("--json", action="store_true", help="print the report as JSON")
    @argument("--timeout", type=float, metavar="SECONDS", help="bound on each check")
    @line_magic
    def sci_health(self, line: str = "") -> Any:
        """Run sci_ext's health checks (cache dir, disk, memory, CPU, vault, Redis, your own).

        Examples::

            %sci_health                 # table of every check
            %sci_health disk memory     # only these
            %sci_health --json
        """
        from ..core.telemetry.health import run_health_checks

        try:
            args = parse_argstring(self.sci_health, strip_comment(line))
        except UsageError:
            raise
        except SystemExit as exc:  # argparse on bad input
            raise UsageError(f"%sci_health: bad arguments {line!r}") from exc
        if args.timeout is not None and not args.timeout > 0:
            raise UsageError(f"%sci_health: --timeout must be > 0 seconds, got {args.timeout}")
        try:
            report = run_health_checks(args.checks or None, timeout=args.timeout)
        except ValueError as exc:
            raise UsageError(f"%sci_health: {exc}") from None
        if args.json:
            print(json.dumps(report.as_dict(), indent=2))
            return None
        return report


def register(ipython: InteractiveShell, state: KernelState) -> None:
    """Register ``%sci_health``."""
    ipython.register_magics(HealthMagics)
