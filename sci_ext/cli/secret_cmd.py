"""``jupyter sci secret set|list|delete|rotate``: the vault from a shell.

``set`` reads the value from a hidden prompt (a terminal) or from standard input
(a pipe), never from the command line, where it would land in shell history and
in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Any

__all__ = ["add_parser", "read_value"]


def add_parser(subparsers: Any) -> None:
    """Add the ``secret`` verb group."""
    from ..core.security import dotenv

    dotenv.register()  # `jupyter sci config migrate .env`
    secret = subparsers.add_parser("secret", help="store, list, delete and rotate vault secrets")
    verbs = secret.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    set_ = verbs.add_parser("set", help="store NAME; the value comes from a hidden prompt or stdin")
    set_.add_argument("name")
    set_.set_defaults(handler=_set)

    list_ = verbs.add_parser("list", help="names and dates (never values)")
    list_.add_argument("--json", action="store_true", help="machine-readable output")
    list_.set_defaults(handler=_list)

    delete = verbs.add_parser("delete", help="remove NAME")
    delete.add_argument("name")
    delete.set_defaults(handler=_delete)

    rotate = verbs.add_parser("rotate", help="new master key; every secret re-encrypted")
    rotate.add_argument(
        "--new-passphrase",
        action="store_true",
        help="ask for a new passphrase (prompt, or one line of stdin) instead of keeping the current one",
    )
    rotate.set_defaults(handler=_rotate)


def read_value(prompt: str) -> str:
    """A value from a hidden prompt (terminal) or the first line of stdin (pipe)."""
    from . import UsageFailure

    if sys.stdin is not None and sys.stdin.isatty():
        value = getpass.getpass(prompt)
    else:
        value = sys.stdin.readline() if sys.stdin is not None else ""
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    if not value:
        raise UsageFailure("empty value (type it at the prompt or pipe it on stdin; never on the command line)")
    return value


def _set(args: argparse.Namespace) -> int:
    from ..core.errors import SecurityError
    from ..core.security import get_security_manager
    from ..core.security.vault import validate_name
    from . import UsageFailure

    try:
        validate_name(args.name)
    except SecurityError as exc:
        raise UsageFailure(str(exc)) from None
    value = read_value(f"Value of {args.name}: ")
    manager = get_security_manager()
    manager.set_secret(args.name, value)
    print(f"stored {args.name} in {manager.vault.path}")
    return 0


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "never"


def _list(args: argparse.Namespace) -> int:
    from .._table import Table
    from ..core.security import get_security_manager

    infos = get_security_manager().list_secrets()
    if args.json:
        print(
            json.dumps(
                [{"name": i.name, "created": i.created, "updated": i.updated, "last_used": i.last_used} for i in infos],
                indent=2,
            )
        )
    else:
        rows = [(i.name, _when(i.created), _when(i.updated), _when(i.last_used)) for i in infos]
        print(repr(Table(["name", "created", "updated", "last used"], rows)))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from ..core.security import get_security_manager
    from . import CheckFailure

    try:
        get_security_manager().delete_secret(args.name)
    except KeyError as exc:
        raise CheckFailure(exc.args[0]) from None
    print(f"deleted {args.name}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from ..core.security import get_security_manager

    manager = get_security_manager()
    passphrase = read_value("New vault passphrase: ") if args.new_passphrase else None
    manager.unlock()  # with the current key (prompt or SCI_EXT_VAULT_PASSPHRASE)
    count = len(manager.vault.names())
    manager.rotate(passphrase)
    print(f"rotated the master key of {manager.vault.path}; {count} secret(s) re-encrypted")
    return 0
