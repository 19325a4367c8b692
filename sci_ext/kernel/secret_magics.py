"""``%sci_secret``: the encrypted vault from a notebook, and output redaction.

``set NAME`` asks with getpass (the value is never echoed and never enters
``In[]`` or the history), ``list``, ``delete NAME``, ``export NAME ... | --all``
(into ``os.environ``), ``rotate``, ``lock``.  Loading the extension installs the
redaction hooks of :mod:`.redaction` (not this module: it loads at the first
``%sci_secret``), so any secret value read in this kernel shows as
``[REDACTED:NAME]`` in every output.
"""

from __future__ import annotations

import getpass
import time
from typing import TYPE_CHECKING, Any

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from .._table import Table
from ..core.errors import SecurityError
from ..core.security import get_security_manager
from .lines import strip_comment
from .state import KernelState

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["SecretMagics", "register"]

VERBS = ("set", "list", "delete", "export", "rotate", "lock", "unlock")


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "never"


@magics_class
class SecretMagics(Magics):
    """The ``%sci_secret`` magic."""

    @magic_arguments()
    @argument("verb", choices=VERBS, help="what to do")
    @argument("names", nargs="*", help="secret name(s)")
    @argument("--all", action="store_true", help="with export: every secret")
    @line_magic
    def sci_secret(self, line: str = "") -> None:
        """Manage secrets in the encrypted vault.

        Examples::

            %sci_secret set OPENAI_API_KEY     # prompts; nothing is echoed or saved
            %sci_secret list                   # names and dates, never values
            %sci_secret export OPENAI_API_KEY  # into os.environ (redacted in outputs)
            %sci_secret export --all
            %sci_secret delete OLD_KEY
            %sci_secret rotate                 # new master key, all re-encrypted
            %sci_secret lock                   # forget the key until next use
            %sci_secret unlock                 # ask for the passphrase now (creates the vault if none)
        """
        try:
            args = parse_argstring(self.sci_secret, strip_comment(line))
        except UsageError as exc:
            raise UsageError(f"%sci_secret: {exc}; verbs: {', '.join(VERBS)}") from None
        try:
            self._run(args)
        except (SecurityError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise UsageError(f"{type(exc).__name__}: {message}") from None

    def _run(self, args: Any) -> None:
        manager = get_security_manager()
        verb, names = args.verb, args.names
        if args.all and verb != "export":
            raise UsageError("--all only goes with export")
        if verb in ("set", "delete") and len(names) != 1:
            raise UsageError(f"%sci_secret {verb} takes exactly one NAME")
        if verb in ("list", "rotate", "lock", "unlock") and names:
            raise UsageError(f"%sci_secret {verb} takes no names")
        if verb == "set":
            name = names[0]
            try:
                value = getpass.getpass(f"Value of {name}: ")
            except StdinNotImplementedError:
                raise UsageError(
                    "this frontend cannot prompt for input; use get_security_manager().set_secret(NAME, value)"
                ) from None
            if not value:
                raise UsageError(f"empty value: {name} was not changed")
            manager.set_secret(name, value)
            print(f"stored {name} in the vault ({manager.vault.path})")
        elif verb == "list":
            rows = [(i.name, _when(i.created), _when(i.updated), _when(i.last_used)) for i in manager.list_secrets()]
            display(
                Table(["name", "created", "updated", "last used"], rows, title=f"sci_ext vault: {len(rows)} secret(s)")
            )
        elif verb == "delete":
            manager.delete_secret(names[0])
            print(f"deleted {names[0]}")
        elif verb == "export":
            if not names and not args.all:
                raise UsageError("%sci_secret export needs NAME ... or --all")
            if names and args.all:
                raise UsageError("give names or --all, not both")
            exported = manager.export_secrets(names, all=args.all)
            print(f"exported {', '.join(exported)} into os.environ (values are redacted from outputs)")
        elif verb == "rotate":
            count = len(manager.vault.names())
            manager.rotate()
            print(f"rotated the master key; {count} secret(s) re-encrypted")
        elif verb == "lock":
            manager.lock()
            print("vault locked")
        elif verb == "unlock":
            manager.unlock()
            print(f"vault unlocked ({manager.vault.path})")


def register(ipython: InteractiveShell, state: KernelState) -> None:
    """Register ``%sci_secret`` (output redaction is :mod:`.redaction`, installed at load)."""
    ipython.register_magics(SecretMagics)
