"""``%%guarded``: re-run a cell on transient failures, behind a shared breaker and rate limit.

::

    %%guarded [NAME] [--retries N] [--timeout S] [--wait-initial S] [--wait-max S]
              [--on Exc[,Exc]] [--breaker NAME] [--rate N/second|minute|hour]
              [--fallback STATEMENT]

The magic is thin: it compiles the cell once (IPython's own transforms, so
``%magics`` and ``!commands`` inside still work; the last expression is displayed
as usual), then runs it through :class:`~sci_ext.core.resilience.RetryPolicy`,
:class:`~sci_ext.core.resilience.CircuitBreaker` and
:class:`~sci_ext.core.resilience.RateLimiter`.  The cell runs by ``exec`` in the
user namespace rather than ``shell.run_cell``: run_cell would swallow the error
into ``result.error_in_exec`` and print a full traceback per failed attempt; here
the retry loop sees the exception itself and the user sees one line per retry and
one traceback at the end.
"""

from __future__ import annotations

import ast
import builtins
import re
import sqlite3
import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .cell_magic_fastpath import transform_body
from .cellcache.source import cell_number, header_of
from .lines import strip_comment
from .state import KernelState

__all__ = ["GuardMagics", "register"]

_FALLBACK = re.compile(r"(?:^|\s)--fallback(?:=|\s+)(?P<stmt>.*)$", re.DOTALL)
_NAME = re.compile(r"^[\w.:-]+$")


def _say(text: str) -> None:
    # stderr, flushed: the line must be visible before the wait that follows it.
    print(text.replace("\n", " "), file=sys.stderr, flush=True)


def _short(exc: BaseException, limit: int = 200) -> str:
    from ..core.security.redact import shorten

    # redact FIRST, then cut: cut first, the start of a long key would no longer match it
    message = shorten(" ".join(str(exc).split()), limit)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def split_fallback(line: str) -> tuple[str, str | None]:
    """Split ``--fallback STATEMENT`` (always the last option) off the magic line."""
    match = _FALLBACK.search(line)
    if match is None:
        return line, None
    statement = match.group("stmt").strip()
    if len(statement) >= 2 and statement[0] == statement[-1] and statement[0] in "'\"":
        statement = statement[1:-1]
    if not statement:
        raise UsageError("--fallback needs a Python statement, e.g. --fallback result = None")
    try:
        compile(statement, "<fallback>", "exec")
    except SyntaxError as exc:
        raise UsageError(f"--fallback: not a valid Python statement ({exc.msg}): {statement!r}") from None
    return line[: match.start()], statement


def expand_vars(shell: Any, line: str) -> str:
    """``line`` with ``$name`` and ``{expr}`` expanded, as IPython's ``run_cell_magic`` would.

    ``%%guarded`` opts out of IPython's expansion, which copies the whole user namespace
    on every call (it grows by one ``_iN`` per cell: a long session pays for it in every
    guarded cell).  A line without ``$``, ``{`` or ``}`` comes out of IPython's formatter
    unchanged, so only such lines are expanded here, with the same namespace (the user
    namespace and the locals of the frame IPython picks, two above ``run_cell_magic``).  Called
    without ``run_cell_magic`` (the magic function called directly), IPython expands
    nothing, and neither does this.
    """
    if "$" not in line and "{" not in line and "}" not in line:
        return line
    from IPython.core.interactiveshell import InteractiveShell

    target = InteractiveShell.run_cell_magic.__code__
    frame: FrameType | None = sys._getframe(1)
    distance = 1
    while frame is not None and frame.f_code is not target:
        frame, distance = frame.f_back, distance + 1
    if frame is None:
        return line
    # IPython's run_cell_magic expands with var_expand(line, stack_depth=2): the frame two
    # above run_cell_magic (var_expand counts from itself: sys._getframe(depth + 1)).
    return str(shell.var_expand(line, distance + 2))


def _as_typed(shell: Any, body: str) -> tuple[str, str]:
    """The ``%%guarded`` line(s) and the body exactly as the user typed them.

    IPython hands the magic the body with a newline added at the end; the cell as typed
    (a notebook sends none) is what IPython named the cell after.
    """
    header = header_of(shell, body)
    raw = getattr(getattr(getattr(shell.displayhook, "exec_result", None), "info", None), "raw_cell", None)
    if header and isinstance(raw, str) and raw.startswith(header):
        return header, raw[len(header) :]
    return header, body


def resolve_on(text: str, namespace: dict[str, Any]) -> Callable[[BaseException], bool]:
    """``--on`` names -> predicate: categories, classes in the namespace/builtins, or SDK class names."""
    from sci_ext.core import errors
    from sci_ext.core.resilience.classify import _NAMES, ErrorCategory, classify_error

    categories = {c.value for c in ErrorCategory}
    classes: list[type[BaseException]] = []
    wanted_categories: set[str] = set()
    class_names: set[str] = set()
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name in categories:
            wanted_categories.add(name)
            continue
        obj: Any = None
        head, *rest = name.split(".")
        for source in (namespace, vars(builtins), vars(errors)):
            if head in source:
                obj = source[head]
                break
        for part in rest:
            obj = getattr(obj, part, None)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            if not issubclass(obj, Exception):
                raise UsageError(f"--on: {name} is never retried (it is how the kernel is interrupted or exits)")
            classes.append(obj)
        elif obj is None and name in _NAMES:
            class_names.add(name)  # an SDK error not imported here: match it by class name
        else:
            raise UsageError(
                f"--on: unknown exception or category {name!r} "
                f"(an exception class in the notebook, a builtin, or one of: {', '.join(sorted(categories))})"
            )
    if not (classes or wanted_categories or class_names):
        raise UsageError("--on needs at least one exception name or category")
    class_tuple = tuple(classes)

    def predicate(exc: BaseException) -> bool:
        if class_tuple and isinstance(exc, class_tuple):
            return True
        if class_names and any(k.__name__ in class_names for k in type(exc).__mro__):
            return True
        return bool(wanted_categories) and str(classify_error(exc)) in wanted_categories

    return predicate


def _outcome(label: str, error: BaseException, attempts: int, retryable: bool, on: str | None) -> str:
    """The one line that says how the guarded cell ended, with accurate counts."""
    from sci_ext.core.errors import CircuitOpenError
    from sci_ext.core.resilience import classify_error

    if isinstance(error, CircuitOpenError):
        if attempts:
            return f"guarded {label}: {attempts} attempt(s) failed, then attempt {attempts + 1} was refused: {error}"
        return f"guarded {label}: not run: {error}"
    if attempts <= 1 and not retryable:
        from ..core.security.redact import shorten

        why = f"not in --on {on}" if on else "not transient"
        message = shorten(" ".join(str(error).split()), 200)
        return f"guarded {label}: {type(error).__name__} is {why}: not retried" + (f" ({message})" if message else "")
    return f"guarded {label}: gave up after {attempts} attempt(s): {_short(error)} [{classify_error(error)}]"


@magics_class
class GuardMagics(Magics):
    """The ``%%guarded`` cell magic."""

    _compiled: dict[tuple[str, int], tuple[str, CodeType | None, CodeType | None]]
    _code: dict[tuple[str, str, int, int], tuple[CodeType | None, CodeType | None]]

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self._compiled = {}
        self._code = {}
        self._parsed: dict[str, tuple[Any, str | None]] = {}

    @property
    def ip(self) -> Any:
        """The shell (typed loosely: IPython's attribute is Optional)."""
        return self.shell

    @magic_arguments()
    @argument("name", nargs="?", help="a label for messages; also names the --rate bucket")
    @argument(
        "--retries",
        type=int,
        metavar="N",
        help="retries after the first attempt (default: retry.max_attempts - 1)",
    )
    @argument("--timeout", type=float, metavar="SECONDS", help="bound on the total time spent retrying")
    @argument("--wait-initial", type=float, metavar="S", help="first wait (default retry.initial_wait)")
    @argument("--wait-max", type=float, metavar="S", help="longest single wait (default retry.max_wait)")
    @argument("--on", metavar="EXC[,EXC]", help="retry these exceptions or categories instead of transient errors")
    @argument("--breaker", metavar="NAME", help="circuit breaker shared by every cell and kernel naming it")
    @argument("--rate", metavar="N/UNIT", help="token bucket, e.g. 60/minute, shared under NAME")
    @argument("--fallback", metavar="STATEMENT", help="run when all attempts fail or the breaker is open (last option)")
    @no_var_expand  # expanded by expand_vars, only when the line asks for it
    @cell_magic
    def guarded(self, line: str, cell: str) -> None:
        """Run the cell, retrying transient failures with backoff.

        Examples::

            %%guarded fetch --retries 4 --breaker openai --rate 60/minute
            reply = client.chat.completions.create(...)

            %%guarded --on TimeoutError,rate_limit --fallback reply = cached_reply
            reply = ask(prompt)

        Each retry prints one line (attempt, error, wait); interrupting the kernel
        stops at once and never counts as a breaker failure.  ``--fallback`` must be
        the last option; the error is bound to ``_sci_error`` while it runs.
        """
        __tracebackhide__ = True
        line = expand_vars(self.ip, line)
        parsed = self._parsed.get(line)
        if parsed is None:
            # Parsing is pure, and argparse is half the magic's own cost: parse a line once.
            options, fallback = split_fallback(strip_comment(line))
            parsed = (parse_argstring(self.guarded, options), fallback)
            if len(self._parsed) > 256:
                self._parsed.clear()
            self._parsed[line] = parsed
        args, fallback = parsed
        error = self._run(args, cell, fallback)
        if error is not None:
            raise error  # outside any except block: the user's exception keeps its own chain

    # -- steps

    def _options(self, args: Any) -> dict[str, Any]:
        from sci_ext.core.resilience import RateLimiter, circuit_breaker

        for option, value in (("--retries", args.retries), ("--timeout", args.timeout)):
            if value is not None and not value >= 0:  # NaN too
                raise UsageError(f"{option} must be >= 0, got {value}")
        for option, value in (("--wait-initial", args.wait_initial), ("--wait-max", args.wait_max)):
            if value is not None and not value >= 0:
                raise UsageError(f"{option} must be >= 0, got {value}")
        for option, value in (("NAME", args.name), ("--breaker", args.breaker)):
            if value is not None and not _NAME.match(value):
                raise UsageError(f"{option}: {value!r} may only hold letters, digits and . _ : -")
        on = resolve_on(args.on, self.ip.user_ns) if args.on else None
        limiter = None
        try:
            if args.rate:
                try:
                    limiter = RateLimiter(args.name or args.breaker or "guarded", args.rate)
                except ValueError as exc:
                    raise UsageError(f"--rate: {exc}") from None
            breaker = circuit_breaker(args.breaker) if args.breaker else None
        except (OSError, sqlite3.Error) as exc:
            # The shared state lives in core.state_dir: say which path is unusable, in one line.
            option = "--breaker" if limiter is not None or not args.rate else "--rate"
            reason = f"{type(exc).__name__}: {exc}"
            raise UsageError(f"{option}: shared state unusable ({reason}); check core.state_dir") from None
        return {"on": on, "limiter": limiter, "breaker": breaker}

    def _compile(self, cell: str) -> tuple[str, CodeType | None, CodeType | None]:
        shell = self.ip
        key = (cell, shell.execution_count)
        cached = self._compiled.get(key)
        if cached is not None:  # the same cell run again under the same number (silent runs)
            return cached
        source = transform_body(shell, cell)
        header, typed = _as_typed(shell, cell)
        # As cellcache.source.compile_body: the typed text registered for tracebacks under the
        # running cell's number, the body parsed with its line numbers as typed.  Registered
        # under the cell's own text: in a kernel, the name IPython gave the cell already
        # (ipykernel names by the text; cell_names hashes it once).
        shown = header + typed if header else source
        filename = str(shell.compile.cache(shown, cell_number(shell), raw_code=shown))
        offset = header.count("\n")
        # A new cell number, the same cell: IPython's transforms ran again (they may depend on
        # state), and so did the registration; the code compiled from the same source under the
        # same file name and line offset is reused (ipykernel's IPYKERNEL_CELL_NAME names every
        # cell alike), never when AST transformers run (they may change the tree run to run).
        code_key = None if shell.ast_transformers else (source, filename, offset, shell.compile.flags)
        code = self._code.get(code_key) if code_key is not None else None
        try:
            if code is None:
                # Blank lines in front: the line numbers as typed, at parse time.
                parsed = ast.parse("\n" * offset + source, filename)
                code = self._compile_tree(shell, parsed, source, filename)
                if code_key is not None:
                    if len(self._code) > 64:
                        self._code.clear()
                    self._code[code_key] = code
        except SyntaxError as exc:
            # The body skipped IPython's token transforms (cell_magic_fastpath): where their
            # tokenizer would have refused it first, raise IPython's own error, as without sci_ext.
            shell.transform_cell(cell)
            if "await" in str(exc.msg):
                raise UsageError(
                    "%%guarded cannot re-run top-level await; put the awaits in an async function "
                    "decorated with sci_ext.core.retry_with_backoff"
                ) from None
            raise
        if len(self._compiled) > 64:
            self._compiled.clear()
        self._compiled[key] = compiled = (filename, code[0], code[1])
        return compiled

    @staticmethod
    def _compile_tree(
        shell: Any, parsed: ast.Module, source: str, filename: str
    ) -> tuple[CodeType | None, CodeType | None]:
        """The cell's statements (``exec``) and its last expression (``single``: shown as Out[n])."""
        tree = shell.transform_ast(parsed)
        body, last = tree.body, None
        # As in a plain cell: the last expression is displayed unless it ends with ';'
        # (asked only when there is one: the check tokenizes the cell).
        if body and isinstance(body[-1], ast.Expr) and not shell.displayhook.semicolon_at_end_of_expression(source):
            body, last = body[:-1], body[-1]
        flags = shell.compile.flags
        head = compile(ast.Module(body=body, type_ignores=[]), filename, "exec", flags, True) if body else None
        # 'single' mode sends the last expression's value to the displayhook (Out[n]).
        tail = compile(ast.Interactive(body=[last]), filename, "single", flags, True) if last else None
        return head, tail

    def _run(self, args: Any, cell: str, fallback: str | None) -> BaseException | None:
        __tracebackhide__ = True
        from sci_ext.core.errors import CircuitOpenError
        from sci_ext.core.resilience import RetryPolicy, record_error
        from sci_ext.core.resilience.retry import default_retryable

        options = self._options(args)
        label = args.name or "cell"
        filename, head, tail = self._compile(cell)
        user_ns = self.ip.user_ns
        user_global_ns = self.ip.user_global_ns
        limiter, breaker = options["limiter"], options["breaker"]
        attempts = 0
        failures: list[Exception] = []

        def run_cell_code() -> None:
            __tracebackhide__ = True
            if head is not None:
                exec(head, user_global_ns, user_ns)  # noqa: S102  # nosec B102  # the user's own cell
            if tail is not None:
                exec(tail, user_global_ns, user_ns)  # noqa: S102  # nosec B102

        def attempt() -> None:
            __tracebackhide__ = True
            nonlocal attempts
            if limiter is not None:
                limiter.acquire(
                    on_wait=lambda s: _say(f"guarded {label}: rate limit {limiter.rate_text}, waiting {s:.2f} s")
                )
            if breaker is None:
                attempts += 1
                run_cell_code()
                return
            try:
                breaker.call(run_cell_code)  # raises CircuitOpenError before running when open
            except CircuitOpenError as exc:
                if failures and exc.__context__ is None:
                    exc.__context__ = failures[-1]  # show what opened it, in the traceback
                raise
            except Exception as exc:
                attempts += 1
                failures.append(exc)
                raise
            attempts += 1

        user_on = options["on"]

        def should_retry(exc: BaseException) -> bool:
            if not isinstance(exc, Exception) or isinstance(exc, CircuitOpenError):
                return False  # an open breaker fails fast; interrupts stop at once
            return user_on(exc) if user_on is not None else default_retryable(exc)

        def announce(event: Any) -> None:
            _say(
                f"guarded {label}: attempt {event.attempt}/{event.max_attempts} failed with "
                f"{_short(event.error)} [{event.category}]; retrying in {event.wait:.2f} s"
            )

        policy = RetryPolicy(
            None if args.retries is None else args.retries + 1,
            on=should_retry,
            initial_wait=args.wait_initial,
            max_wait=args.wait_max,
            timeout=args.timeout,
            name=f"%%guarded {label}",
            on_retry=announce,
            notice=False,  # the cell prints its own retry lines
        )
        try:
            policy.call(attempt)
            return None
        except Exception as exc:
            error: Exception = exc
        _say(_outcome(label, error, attempts, should_retry(error), args.on))
        record_error(error, f"%%guarded {label}")
        if fallback is not None:
            _say(f"guarded {label}: running fallback")
            user_ns["_sci_error"] = error
            # Cached like a cell's code, so a failing fallback's traceback shows its source.
            where = self.ip.compile.cache(fallback, self.ip.execution_count, raw_code=fallback)
            exec(  # noqa: S102  # nosec B102  # the user's own fallback statement
                compile(fallback, where, "exec", self.ip.compile.flags, True), user_global_ns, user_ns
            )
            return None
        from .tracebacks import install, trim

        install(self.ip)  # the user's frames only: no retry machinery, no run_cell_magic line
        return trim(error, filename)


def register(ipython: Any, state: KernelState) -> None:
    """Register ``%%guarded``."""
    ipython.register_magics(GuardMagics)
    state.on_close(lambda: _untrim(ipython))


def _untrim(ipython: Any) -> None:
    from .tracebacks import uninstall

    uninstall(ipython)
