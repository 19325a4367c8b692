"""``jupyter sci config show|get|set|validate|migrate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..core.config import ConfigManager
from ..core.errors import ConfigError

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    """Add the ``config`` verb group."""
    config = subparsers.add_parser("config", help="show, change, validate and migrate configuration")
    verbs = config.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    show = verbs.add_parser("show", help="every setting (or a section) with its source")
    show.add_argument("prefix", nargs="?", help="SECTION or KEY")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_show)

    get = verbs.add_parser("get", help="print one value")
    get.add_argument("key", help="section.key")
    get.set_defaults(handler=_get)

    set_ = verbs.add_parser("set", help="write KEY=VALUE into the user or project file")
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    where = set_.add_mutually_exclusive_group()
    where.add_argument("--user", dest="target", action="store_const", const="user", help="the user file (default)")
    where.add_argument("--project", dest="target", action="store_const", const="project", help="the project file")
    set_.set_defaults(handler=_set, target="user")

    validate = verbs.add_parser("validate", help="check files and environment; exit 1 if invalid")
    validate.set_defaults(handler=_validate)

    migrate = verbs.add_parser("migrate", help="migrate bfts_config.yaml or an older sci_ext file")
    migrate.add_argument("path", type=Path)
    migrate.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    migrate.add_argument("--to", type=Path, help="TOML file to write (default: the project file)")
    migrate.set_defaults(handler=_migrate)


def _manager() -> ConfigManager:
    manager = ConfigManager()
    if manager.last_error:
        raise ConfigError(manager.last_error)
    return manager


def _unknown(what: str, name: str, config: Any) -> str:
    """``no config key 'rag.topk' (did you mean rag.top_k?)``, as ``set`` says it."""
    from ..core.config.model import suggest

    candidates = {key for key, *_ in config.rows(None)}
    candidates |= {key.partition(".")[0] for key in candidates}
    return f"no config {what} {name!r}{suggest(name, candidates)}"


def _show(args: argparse.Namespace) -> int:
    import sys

    from .._table import Table
    from . import UsageFailure

    manager = ConfigManager()
    if manager.last_error:
        # Show what is in effect (defaults and environment) and say what is ignored and why.
        problems = manager.validate() or [manager.last_error]
        for problem in problems:
            print(f"ignored: {problem}", file=sys.stderr)
        print(
            "the file(s) above are ignored until fixed; below: defaults and environment "
            "(check with: jupyter sci config validate)",
            file=sys.stderr,
        )
    config = manager.config
    if args.prefix and args.prefix not in config:
        raise UsageFailure(_unknown("section or key", args.prefix, config))
    rows = config.rows(args.prefix)
    if args.json:
        print(json.dumps({k: {"value": v, "type": t, "source": str(s)} for k, v, t, s in rows}, indent=2, default=str))
    else:
        print(repr(Table(["key", "value", "type", "source"], rows)))
    return 0


def _get(args: argparse.Namespace) -> int:
    from . import UsageFailure

    config = _manager().config
    if args.key not in config or args.key.partition(".")[0] == args.key:
        raise UsageFailure(_unknown("key", args.key, config))
    value = config[args.key]
    print(json.dumps(value) if not isinstance(value, str) else value)
    return 0


def _set(args: argparse.Namespace) -> int:
    from . import UsageFailure

    manager = _manager()
    updates = {}
    for item in args.assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageFailure(f"expected KEY=VALUE, got {item!r}")
        updates[key] = value
    try:
        manager.set_many(updates)
    except ConfigError as exc:
        # The values are checked as a runtime layer; that is machinery, not what the user did.
        raise UsageFailure(str(exc).replace("runtime override: ", "")) from None
    written = {key: manager.config.shown(key) for key in updates}
    path = manager.save(args.target)
    for key, value in written.items():
        line = f"{key} = {value!r}  ({path})"
        source = manager.source(key)
        if source.location != str(path):
            # A later layer (project file, environment) still decides the value in effect.
            line += f"; in effect: {manager.config.shown(key)!r} from {source}"
        print(line)
    return 0


def _validate(args: argparse.Namespace) -> int:
    import sys

    manager = ConfigManager()
    problems = manager.validate()
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    files = [str(p) for p in (manager.user_path, manager.project_path) if p is not None and p.exists()]
    print("config valid" + (f" ({', '.join(files)})" if files else " (defaults and environment only)"))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from ..core.config.migrate import migrate
    from ..core.security import dotenv  # noqa: F401 - importing it registers the .env migrator
    from . import UsageFailure

    if not args.path.exists():
        raise UsageFailure(f"{args.path}: no such file")
    result = migrate(args.path, target=args.to, dry_run=args.dry_run)
    print(result.summary())
    if result.dry_run and result.diff:
        print(result.diff, end="")
    return 0
