"""``jupyter sci apikey create|list|revoke``: API keys for ``/sci/metrics`` scrapers."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Add the ``apikey`` verb group."""
    apikey = subparsers.add_parser("apikey", help="create, list and revoke API keys")
    verbs = apikey.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    create = verbs.add_parser("create", help="create a key; the token is printed once")
    create.add_argument("name", nargs="?", default="metrics", help="a label for the key (default: metrics)")
    create.add_argument(
        "--scope", action="append", dest="scopes", metavar="SCOPE", help="repeatable; default metrics:read"
    )
    create.add_argument("--ttl", type=float, metavar="SECONDS", help="expire after this many seconds")
    create.set_defaults(handler=_create)

    list_ = verbs.add_parser("list", help="every key (never a secret)")
    list_.add_argument("--json", action="store_true", help="machine-readable output")
    list_.set_defaults(handler=_list)

    revoke = verbs.add_parser("revoke", help="delete a key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_revoke)


def _create(args: argparse.Namespace) -> int:
    from ..core.errors import SecurityError
    from ..core.security import get_security_manager
    from . import UsageFailure

    try:
        token = get_security_manager().generate_api_key(args.name, tuple(args.scopes or ("metrics:read",)), args.ttl)
    except SecurityError as exc:
        raise UsageFailure(str(exc)) from None
    print(token)
    import sys

    print("store this token now: it is not kept and cannot be shown again", file=sys.stderr)
    return 0


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "never"


def _list(args: argparse.Namespace) -> int:
    from .._table import Table
    from ..core.security import get_security_manager

    keys = get_security_manager().list_api_keys()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": k.key_id,
                        "name": k.name,
                        "scopes": list(k.scopes),
                        "created": k.created,
                        "expires": k.expires,
                    }
                    for k in keys
                ],
                indent=2,
            )
        )
    else:
        rows = [
            (k.key_id, k.name, ",".join(k.scopes), _when(k.created), _when(k.expires) if k.expires else "no expiry")
            for k in keys
        ]
        print(repr(Table(["id", "name", "scopes", "created", "expires"], rows)))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from ..core.security import get_security_manager
    from . import CheckFailure

    try:
        info = get_security_manager().revoke_api_key(args.key_id)
    except KeyError as exc:
        raise CheckFailure(exc.args[0]) from None
    print(f"revoked {info.key_id} ({info.name})")
    return 0
