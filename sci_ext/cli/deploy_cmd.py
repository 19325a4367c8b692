"""``jupyter sci deploy NEW.toml [--status]`` and ``jupyter sci rollback``: blue/green config."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from . import UsageFailure

__all__ = ["add_parser"]


def _progress(message: str) -> None:
    print(f"deploy: {message}", file=sys.stderr, flush=True)


def _target(args: argparse.Namespace) -> Path | None:
    return Path(args.target).expanduser() if args.target else None


def _log_to_file() -> None:
    """Every deploy step goes to sci_ext's JSON log (core.state_dir/logs) with the deployment's id."""
    from ..core.telemetry import configure_logging

    try:
        configure_logging()
    except Exception as exc:  # the deploy itself does not need the log
        print(f"deploy: warning: no JSON log ({exc})", file=sys.stderr)


def _deploy(args: argparse.Namespace) -> int:
    from ..deploy import pipeline

    if args.status:
        if args.file:
            raise UsageFailure("deploy --status takes no file")
        state = pipeline.status(_target(args))
        if args.json:
            print(json.dumps(asdict(state), indent=2))
        else:
            print("\n".join(state.lines()))
            if not any(info.get("exists") for info in state.slots.values()):
                print(
                    "nothing deployed yet: 'jupyter sci deploy NEW.toml' validates NEW.toml, tries it on a "
                    "candidate server and switches to it; 'jupyter sci rollback' goes back"
                )
        return 0
    if not args.file:
        raise UsageFailure("deploy: give the new config file (or --status)")
    _log_to_file()
    report = pipeline.deploy(
        args.file,
        target=_target(args),
        candidate=not args.no_candidate,
        startup_timeout=args.startup_timeout,
        progress=_progress,
    )
    print(f"deployed {args.file} to slot {report.slot} in {report.seconds:.1f} s (deployment {report.correlation_id})")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from ..deploy import pipeline

    _log_to_file()
    report = pipeline.rollback(target=_target(args), progress=_progress)
    print(f"rolled back to slot {report.slot} (was {report.previous})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``deploy`` and ``rollback``."""
    deploy = sub.add_parser("deploy", help="blue/green deploy of a config file, health-checked")
    deploy.add_argument("file", nargs="?", help="the new config (.toml)")
    deploy.add_argument("--status", action="store_true", help="show both slots and which is active")
    deploy.add_argument("--json", action="store_true", help="with --status: JSON")
    deploy.add_argument("--target", help="the live config file (default: the user config file)")
    deploy.add_argument(
        "--no-candidate", action="store_true", help="skip the candidate server (validate and switch only)"
    )
    deploy.add_argument("--startup-timeout", type=float, default=90.0, help="seconds to wait for the candidate")
    deploy.set_defaults(handler=_deploy)
    rollback = sub.add_parser("rollback", help="switch back to the slot active before the last deploy")
    rollback.add_argument("--target", help="the live config file (default: the user config file)")
    rollback.set_defaults(handler=_rollback)
