"""``%sci_config``: show, change, validate, reload, save and migrate the configuration."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from .._table import Table
from ..core.config import get_config_manager
from ..core.errors import ConfigError
from .lines import split_line
from .state import KernelState

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["ConfigMagics", "register"]


@magics_class
class ConfigMagics(Magics):
    """The ``%sci_config`` magic."""

    @magic_arguments()
    @argument("items", nargs="*", help="SECTION, KEY (section.key) or KEY=VALUE ...; none: every setting")
    @argument("--reset", nargs="?", const="", metavar="KEY", help="drop the runtime override of KEY (all without KEY)")
    @argument("--validate", action="store_true", help="check files, environment and overrides")
    @argument("--reload", action="store_true", help="re-read the config files and environment now")
    @argument("--save", choices=("user", "project"), help="write runtime overrides into the user or project file")
    @argument("--migrate", metavar="PATH", help="migrate a bfts_config.yaml or older sci_ext file")
    @argument("--dry-run", action="store_true", help="with --migrate: print the diff, write nothing")
    @argument("--to", metavar="FILE", help="with --migrate: the TOML file to write (default: project file)")
    @line_magic
    def sci_config(self, line: str = "") -> None:
        """Show and change sci_ext's configuration.

        Examples::

            %sci_config                      # every setting: value, type, source
            %sci_config cache                # one section
            %sci_config cache.ttl_seconds    # one setting
            %sci_config cache.ttl_seconds=600 retry.max_attempts=5
            %sci_config --reset cache.ttl_seconds
            %sci_config --validate
            %sci_config --save project
            %sci_config --migrate bfts_config.yaml --dry-run
        """
        # Quotes group words as in a shell: core.environment="my laptop"; a trailing # comment is dropped.
        args = self.sci_config.parser.parse_args(split_line(line, "%sci_config"))
        try:
            self._run(args)
        except ConfigError as exc:
            raise UsageError(f"ConfigError: {exc}") from None

    def _run(self, args: Any) -> None:
        manager = get_config_manager()
        if args.migrate:
            self._migrate(args)
            return
        if args.dry_run or args.to:
            raise UsageError("--dry-run and --to only go with --migrate PATH")
        if args.validate:
            self._validate()
            return
        if args.reload:
            changed = manager.reload()
            print("config reloaded: " + ("changed" if changed else "no change"))
            return
        if args.reset is not None:
            manager.reset(args.reset or None)
            print(f"reset {args.reset or 'all runtime overrides'}")
            return
        if args.save:
            path = manager.save(args.save)
            print(f"saved to {path}")
            return
        assignments = [item for item in args.items if "=" in item]
        lookups = [item for item in args.items if "=" not in item]
        if assignments and lookups:
            raise UsageError("mix of KEY=VALUE and lookups: give either assignments or one SECTION/KEY")
        if assignments:
            updates = {}
            for item in assignments:
                key, _, value = item.partition("=")
                if not key.strip():
                    raise UsageError(f"missing key in {item!r}; expected KEY=VALUE")
                updates[key.strip()] = value
            config = manager.set_many(updates)
            for key in updates:
                print(f"{key} = {_short(config.shown(key))}  (runtime)")
            return
        if len(lookups) > 1:
            raise UsageError("give at most one SECTION or KEY to show")
        prefix = lookups[0] if lookups else None
        config = manager.config
        if prefix is not None and prefix not in config:
            problem = manager.unknown_key_message(prefix)
            raise UsageError(f"ConfigError: {problem}")
        rows = [(k, v, t, s) for k, v, t, s in config.rows(prefix)]
        display(
            Table(["key", "value", "type", "source"], rows, title=f"sci_ext config{': ' + prefix if prefix else ''}")
        )

    def _validate(self) -> None:
        manager = get_config_manager()
        problems = manager.validate()
        if not problems:
            files = [str(p) for p in (manager.user_path, manager.project_path) if p is not None and p.exists()]
            print("config valid" + (f" ({', '.join(files)})" if files else " (defaults and environment only)"))
            return
        for problem in problems:
            print(problem, file=sys.stderr)
        raise UsageError(
            f"ConfigError: {len(problems)} problem(s), first: {problems[0]}; the current config is unchanged"
        )

    def _migrate(self, args: Any) -> None:
        from pathlib import Path

        from ..core.config.migrate import migrate
        from ..core.security import dotenv  # noqa: F401 - importing it registers the .env migrator

        result = migrate(Path(args.migrate), target=args.to, dry_run=args.dry_run)
        print(result.summary())
        if result.dry_run and result.diff:
            print(result.diff, end="")
        if result.changed and not result.dry_run:
            get_config_manager().reload(raise_errors=False)


def _short(value: Any) -> str:
    from ..core.security.redact import shorten

    return shorten(repr(value), 79)  # redact first, then cut


def register(ipython: InteractiveShell, state: KernelState) -> None:
    """Register ``%sci_config`` (the hot reload is :mod:`.config_watch`, installed at load)."""
    ipython.register_magics(ConfigMagics)
