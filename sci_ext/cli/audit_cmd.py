"""``jupyter sci audit verify|show``: check and read the hash-chained audit log."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Add the ``audit`` verb group."""
    audit = subparsers.add_parser("audit", help="verify and show the audit log")
    verbs = audit.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    verify = verbs.add_parser("verify", help="check the hash chain; exit 1 at the first broken or missing record")
    verify.add_argument("--path", type=Path, help="audit log (default: the configured one)")
    verify.set_defaults(handler=_verify)

    show = verbs.add_parser("show", help="the last records")
    show.add_argument("-n", type=int, default=20, help="how many (default 20)")
    show.add_argument("--path", type=Path, help="audit log (default: the configured one)")
    show.set_defaults(handler=_show)


def _path(args: argparse.Namespace) -> Path:
    if args.path is not None:
        return Path(args.path)
    from ..core.config import get_config

    config = get_config()
    configured = config.security.audit_path
    return Path(configured) if configured else Path(config.core.state_dir) / "audit" / "audit.jsonl"


def _key_dir() -> Path:
    from ..core.config import get_config

    return Path(get_config().security.key_dir)


def _verify(args: argparse.Namespace) -> int:
    from ..core.security.audit import verify_audit_log
    from . import CheckFailure

    result = verify_audit_log(_path(args), _key_dir())
    if not result.ok:
        raise CheckFailure(result.message)
    print(result.message)
    return 0


def _show(args: argparse.Namespace) -> int:
    from ..core.security.audit import AuditLog

    for record in AuditLog(_path(args), key_dir=_key_dir()).records()[-max(args.n, 0) :] if args.n else []:
        print(json.dumps({k: record.get(k) for k in ("seq", "ts", "event", "details")}))
    return 0
