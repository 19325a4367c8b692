"""A hit: restore a stored entry's variables and replay its outputs.

Everything is unpickled, imported and checked before the namespace is touched,
so an entry that cannot be restored here (a module missing in this kernel, an
alias target gone) is a miss with a warning, never a half-restored namespace.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

from ...core.cache import annotate, stats
from ...core.cache.layered import LayeredStore
from ...core.config import get_config
from .aliasing import fits_in_place, rebuild_view, restore_in_place
from .capture import replay
from .hidden import set_rng_state
from .plan import CellPlan, main_modules
from .session import SESSION, CellRun

__all__ = ["ReplayedResult", "hit", "rebind", "restore_payload", "show_live", "show_stored"]


class ReplayedResult:
    """Shows a stored cell result again (as the cell's ``Out``)."""

    def __init__(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self._data = data
        self._metadata = metadata

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._data, self._metadata

    def __repr__(self) -> str:
        return str(self._data.get("text/plain", "<cached result>"))


def show_stored(shell: Any, value: Any, result: tuple[dict[str, Any], dict[str, Any]] | None) -> None:
    """Make the displayhook show ``result`` (stored data) for ``value`` instead of formatting it again.

    ``Out[n]`` and ``_`` still get ``value``: only the display is replaced.  Replay is
    replay: a hit shows what the cell showed, and never evaluates the restored value's
    ``repr`` (which may look up names that do not exist in this kernel).  The override
    lasts for one call of the displayhook.
    """
    hook = getattr(shell, "displayhook", None)
    if hook is None or value is None or result is None:
        return
    original = type(hook).compute_format_data
    data, metadata = result

    def compute_format_data(shown: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        vars(hook).pop("compute_format_data", None)
        if shown is value:
            return dict(data), dict(metadata)
        formatted: tuple[dict[str, Any], dict[str, Any]] = original(hook, shown)
        return formatted

    hook.compute_format_data = compute_format_data


def show_live(shell: Any, value: Any, around: Any) -> tuple[tuple[dict[str, Any], dict[str, Any]] | None, bool]:
    """Show a miss's result through the displayhook, formatted once, as a plain cell shows it.

    Returns what the displayhook computed (``None`` if it showed nothing, e.g. a quiet
    cell) and whether a formatter raised.  A formatter that raises shows its traceback
    once, from the displayhook, as in a plain cell; a hit could not show it again, so the
    caller stores nothing then.  ``around`` is a context manager entered while the value
    is formatted (the safety net: a ``__repr__`` runs notebook code).
    """
    hook = getattr(shell, "displayhook", None)
    if hook is None:
        return None, False
    original = type(hook).compute_format_data
    computed: list[tuple[dict[str, Any], dict[str, Any]]] = []
    failed: list[bool] = []
    showtraceback = shell.showtraceback

    def failing(*args: Any, **kwargs: Any) -> Any:
        failed.append(True)  # IPython's formatters report their own errors through showtraceback
        return showtraceback(*args, **kwargs)

    def compute_format_data(shown: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        vars(hook).pop("compute_format_data", None)
        shell.showtraceback = failing
        try:
            with around:
                formatted: tuple[dict[str, Any], dict[str, Any]] = original(hook, shown)
        finally:
            vars(shell).pop("showtraceback", None)
        computed.append(formatted)
        return formatted

    hook.compute_format_data = compute_format_data
    try:
        hook(value)
    finally:
        vars(hook).pop("compute_format_data", None)
    return (computed[0] if computed else None), bool(failed)


def show_result(shell: Any, value: Any, result: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Show the cell's result now, through the displayhook (``Out[n]``, ``_``), as stored.

    A plain cell shows its result before the figures the inline backend draws after it;
    showing it here, before those are drawn (miss) or replayed (hit), keeps that order.
    """
    show_stored(shell, value, result)
    hook = getattr(shell, "displayhook", None)
    if hook is not None:
        hook(value)


def rebind(value: Any, ns: dict[str, Any], main: set[str], available: Any = None) -> Any:
    """Point a restored notebook function (or class's methods) at the live namespace.

    Unpickled functions get a private copy of their globals; the notebook's
    functions must see the notebook's globals, as if the cell had run.
    """
    if (
        isinstance(value, types.FunctionType)
        and value.__module__ in main
        and value.__globals__ is not ns
        and not _foreign_globals(value, available if available is not None else ns)
    ):
        new = types.FunctionType(value.__code__, ns, value.__name__, value.__defaults__, value.__closure__)
        new.__kwdefaults__ = value.__kwdefaults__
        new.__qualname__ = value.__qualname__
        new.__doc__ = value.__doc__
        new.__module__ = value.__module__
        new.__annotations__ = value.__annotations__
        new.__dict__.update(value.__dict__)
        return new
    if isinstance(value, type) and value.__module__ in main:
        for attr, member in list(vars(value).items()):
            if isinstance(member, types.FunctionType):
                setattr(value, attr, rebind(member, ns, main, available))
            elif isinstance(member, (staticmethod, classmethod)) and isinstance(member.__func__, types.FunctionType):
                setattr(value, attr, type(member)(rebind(member.__func__, ns, main, available)))
    return value


def _foreign_globals(func: types.FunctionType, available: Any) -> bool:
    """Does ``func`` read globals that are not the notebook's (a library wrapper)?

    sklearn's ``__init_subclass__`` wraps a notebook class's ``transform`` with a function of
    its own module, copying the notebook function's ``__module__``; restored, that wrapper
    must keep the globals it was pickled with (``_wrap_data_with_container``), not get the
    notebook's.  A notebook function's globals are notebook names, present once restored.
    """
    import builtins

    own = func.__globals__
    return any(n in own and n not in available and not hasattr(builtins, n) for n in func.__code__.co_names)


def _repoint_notebook_classes(ns: dict[str, Any]) -> None:
    """Point the methods of the notebook's classes at the live namespace again.

    Unpickling an instance of a notebook class in the kernel that defined the class makes
    cloudpickle find the live class and set its methods to the unpickled copies, whose
    globals are a snapshot of the names they read: the class would then read stale globals.
    """
    main = main_modules(ns)
    for value in list(ns.values()):
        if isinstance(value, type) and value.__module__ in main:
            rebind(value, ns, main)


def restore_payload(shell: Any, payload: dict[str, Any]) -> list[str]:
    """Put a payload's variables into the namespace; the names restored."""
    ns = shell.user_ns
    main = main_modules(ns)
    available = ns.keys() | payload["vars"].keys() | payload["modules"].keys()
    values = {name: rebind(v, ns, main, available) for name, v in payload["vars"].items()}
    modules = {name: importlib.import_module(module) for name, module in payload["modules"].items()}
    # Sharing (see .aliasing): check everything before touching the namespace.
    inplace = [n for n in payload.get("inplace", ()) if n in values and n in ns and fits_in_place(ns[n], values[n])]
    views = {}
    for name, spec in payload.get("views", {}).items():
        base = values.get(spec[0], ns.get(spec[0]))
        if spec[0] in inplace:
            base = ns[spec[0]]
        views[name] = rebuild_view(base, spec)
    aliases = payload.get("aliases", {})
    missing = [other for other in aliases.values() if other not in ns and other not in values]
    if missing:
        raise LookupError(f"{missing[0]!r}, which a restored variable is bound to, is not defined")
    # Only now, with everything unpickled, imported and checked, touch the namespace.
    for name in inplace:
        restore_in_place(ns[name], values.pop(name))
    ns.update(values)
    ns.update(modules)
    for name in views:
        spec = payload["views"][name]
        if spec[0] in values or spec[0] in inplace:
            views[name] = rebuild_view(ns[spec[0]], spec)
    ns.update(views)
    for name, other in aliases.items():
        ns[name] = ns[other]
    for name in payload["deleted"]:
        ns.pop(name, None)
    return sorted([*values, *modules, *inplace, *views, *aliases])


def hit(
    shell: Any, store: LayeredStore, plan: CellPlan, found: tuple[dict[str, Any], str], warn: Any
) -> CellRun | None:
    """Restore a found entry; ``None`` (a miss, with a warning) if it cannot be restored here."""
    payload, layer = found
    opts = plan.opts
    try:
        if plan.replayed:
            import contextlib
            import io

            # Set-up magics (%matplotlib inline, %xmode Plain): their effect is the kernel's state;
            # what they print ("Exception reporting mode: Plain") is in the replayed outputs already.
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                for name, line in plan.replayed:
                    shell.run_line_magic(name, line)
        names = restore_payload(shell, payload)
    except Exception as exc:  # e.g. a module it imported is not installed in this kernel
        warn(f"sci_ext warning: cache entry cannot be restored here ({type(exc).__name__}: {exc}); running the cell")
        return None
    for statement in plan.state:  # library state the cell set (a plot style, display options)
        try:
            exec(statement, shell.user_global_ns, shell.user_ns)  # noqa: S102  # nosec B102  # the cell's own code
        except Exception as exc:
            warn(f"sci_ext warning: re-running {statement!r} on a hit failed ({type(exc).__name__}: {exc})")
    if payload.get("classes"):
        _repoint_notebook_classes(shell.user_ns)
    set_rng_state(payload.get("rng") or {})
    result: tuple[dict[str, Any], dict[str, Any]] | None = payload.get("result")
    value: Any = None
    if "value" in payload:
        value = rebind(payload["value"], shell.user_ns, main_modules(shell.user_ns))
    elif result:  # a result that could not be stored as a value: its display only
        value = ReplayedResult(*result)
    events = payload["events"]
    stored = (result[0], result[1]) if result else None
    shown = stored is not None and value is not None and ("result",) in events
    replay(shell, events, (lambda: show_result(shell, value, stored)) if stored is not None and shown else None)
    annotate.hit("cell", opts.name, payload.get("annotations"))
    try:
        store.count_hit(plan.key)  # the entry's hits and the store-wide hits
    except Exception:  # noqa: S110  # nosec B110  # a counter must not fail a hit
        pass
    SESSION.hits += 1
    stats.record(stats.CacheEvent("cell", layer, "hit", opts.name))
    if not opts.quiet and get_config().cache.notify:
        label = f"'{opts.name}' " if opts.name else ""
        listed = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "") if names else "no variables"
        print(f"[sci_ext] cached cell {label}restored from {layer}: {listed} (key {plan.key[:8]})", flush=True)
    if stored is not None and not shown:
        show_stored(shell, value, stored)
    run = CellRun(plan.key, "hit", layer, names, value, shown=shown)
    SESSION.last = run
    return run
