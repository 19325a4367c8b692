"""The engine of ``%%cached``: key a cell, restore it on a hit, run and store it on a miss.

The key (:func:`cell_key`) covers the normalized code, the content of every
input (see :mod:`.cells`), the code of notebook helpers those inputs reach, the
versions of the modules the cell imports, the watched files and the format
version.  A miss runs the cell with its outputs shown live and recorded
(:mod:`.capture`); if it succeeds, the names it bound, the inputs it changed in
place and its outputs are stored together as one entry.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import re
import sqlite3
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError

from ..core.cache import annotate, stats
from ..core.cache.keys import UnhashableInput, ValueHasher, hash_files, module_version
from ..core.cache.layered import LayeredStore, get_disk_store, get_memory_store, get_redis_store
from ..core.cache.serialize import FORMAT_VERSION, CorruptEntry, pack, unpack
from ..core.cache.store import DiskStore, EntryInfo
from ..core.config import get_config
from ..core.errors import CacheError
from . import aliasing
from .aliasing import fits_in_place, rebuild_view, restore_in_place
from .capture import LiveCapture, replay
from .cells import CellAnalysis, analyze, normalize
from .cellsource import compile_body
from .hidden import HiddenInputs, attribute_value, find_hidden, rng_state, set_rng_state

__all__ = ["SESSION", "CellOptions", "CellRun", "cell_key", "open_store", "run_cached_cell"]

# IPython's own bookkeeping names: never inputs, never outputs.
_INTERNAL = re.compile(r"^(_|__|___|_i+|_i\d+|_\d+|_oh|_ih|_dh|_sh|In|Out|exit|quit|get_ipython)$")


@dataclass
class CellOptions:
    """The parsed options of one ``%%cached`` line."""

    name: str = ""
    ttl: float | None = None
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    force: bool = False
    backend: str | None = None
    quiet: bool = False


@dataclass
class CellRun:
    """What happened to one cached cell (returned for tests and ``%sci_cache``)."""

    key: str = ""
    status: str = "miss"  # hit | miss | uncached
    layer: str = ""
    names: list[str] = field(default_factory=list)
    result: Any = None


class _Session:
    """Hits and misses of this kernel."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.last: CellRun | None = None


SESSION = _Session()


class _ReplayedResult:
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


def _flush_inline_figures() -> None:
    """Draw the figures the inline backend would draw after the cell (``plt.plot`` with no ``show``).

    They are part of the cell's output: drawn here, inside the capture, they are recorded
    and replay on a hit.  The backend's own post-execute flush then finds nothing to draw.
    """
    backend = sys.modules.get("matplotlib_inline.backend_inline")
    matplotlib = sys.modules.get("matplotlib")
    if backend is None or matplotlib is None:
        return
    try:
        if "inline" not in str(matplotlib.get_backend()).lower():
            return
        backend.flush_figures()
    except Exception as exc:  # a figure that fails to draw is reported by the backend as usual
        _warn(f"sci_ext warning: drawing the cell's figures failed ({type(exc).__name__}: {exc})")


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def open_store(backend: str | None = None, warn: Any = _warn) -> LayeredStore:
    """The store of a cell given ``--backend`` (default ``cache.backend``)."""
    cfg = get_config().cache
    backend = backend or cfg.backend
    if backend == "memory":
        return LayeredStore(get_memory_store(cfg.memory_max_items), None, warn)
    if backend == "redis" and not cfg.redis_url:
        raise ValueError("--backend redis needs cache.redis_url (e.g. %sci_config cache.redis_url=redis://host:6379/0)")
    local = get_disk_store(cfg.dir, cfg.size_limit_bytes)
    remote = None
    if cfg.redis_url:
        try:
            remote = get_redis_store(cfg.redis_url, cfg.redis_timeout_seconds, cfg.redis_signing_key)
        except ImportError:
            warn(
                "sci_ext warning: cache.redis_url is set but the redis package is missing"
                " (pip install 'sci_ext[redis]'); using the local cache only"
            )
    return LayeredStore(local, remote, warn)


def _main_modules(ns: dict[str, Any]) -> set[str]:
    return {"__main__", str(ns.get("__name__", "__main__"))}


def input_names(analysis: CellAnalysis, opts: CellOptions) -> list[str]:
    """The inputs that go into the key: ``--inputs`` or the AST's, minus ``--ignore``."""
    names = opts.inputs if opts.inputs is not None else list(analysis.inputs)
    return [n for n in names if n not in opts.ignore and not _INTERNAL.match(n)]


def hash_inputs(ns: dict[str, Any], names: list[str], ignore: list[str]) -> dict[str, str]:
    """``{name: digest}`` of each input: its content, ``<absent>`` or ``<builtin>``."""
    digests = {}
    main = _main_modules(ns)
    for name in names:
        if name in ns:
            hasher = ValueHasher(main, ignore)
            try:
                hasher.update(ns[name], f"input {name!r}")
            except UnhashableInput as exc:
                # Name the culprit: the input itself or the global a helper reads.
                culprit = exc.variable if exc.variable else name
                raise UnhashableInput(exc.name, exc.reason, variable=culprit) from None
            digests[name] = hasher.digest()
        elif hasattr(builtins, name):
            digests[name] = "<builtin>"
        else:
            # Not defined yet: keyed as absent, so defining it later is a miss.
            digests[name] = "<absent>"
    return digests


def _hidden_digests(ns: dict[str, Any], hidden: HiddenInputs, opts: CellOptions) -> dict[str, str]:
    """Digests of the hidden inputs: names read dynamically, module attributes, generator states."""
    extra = [n for n in sorted(hidden.names) if n not in opts.ignore and not _INTERNAL.match(n)]
    digests = {f"<dynamic> {n}": d for n, d in hash_inputs(ns, extra, opts.ignore).items()}
    main = _main_modules(ns)
    for base, path in sorted(hidden.attributes):
        if base in opts.ignore:
            continue
        how, value = attribute_value(ns, base, path)
        hasher = ValueHasher(main, opts.ignore)
        hasher.tag(how)
        try:
            hasher.update(value, f"{base}.{path}")
        except UnhashableInput:
            hasher.tag("<unhashable>")
        digests[f"<attribute> {base}.{path}"] = hasher.digest()
    for which, state in sorted(rng_state(hidden.rng).items()):
        hasher = ValueHasher(main)
        hasher.update(state, f"the global {which} generator state")
        digests[f"<rng> {which}"] = hasher.digest()
    return digests


def cell_key(code: str, analysis: CellAnalysis, digests: dict[str, str], opts: CellOptions) -> str:
    """The entry key of a cell (a 32-hex-digit xxh3-128 digest)."""
    hasher = ValueHasher()
    hasher.tag(f"sci_ext-cell:{FORMAT_VERSION}:py{sys.version_info[0]}.{sys.version_info[1]}")
    hasher.tag(opts.name)
    hasher.tag(normalize(code))
    for name, digest in sorted(digests.items()):
        hasher.tag(f"{name}={digest}")
    for module in analysis.imported_modules:
        hasher.tag(f"module {module}=={module_version(module)}")
    if opts.files:
        hasher.tag("files " + hash_files(opts.files))
    if analysis.reads_environment:
        import os

        hasher.tag("environment")
        if analysis.environment_names is not None:
            # Only the variables the cell names: a restart must not change the key.
            hasher.update([(n, os.environ.get(n)) for n in analysis.environment_names], "the environment")
        else:
            hasher.update(sorted(os.environ.items()), "the environment")
    if opts.outputs is not None:
        hasher.tag("outputs " + ",".join(sorted(opts.outputs)))
    return hasher.digest()


def _execute(shell: Any, code: str, body: str | None = None) -> Any:
    """Run ``code`` in the user namespace; return the last expression's value (or None).

    ``body`` is the cell as typed (before IPython's transforms): tracebacks then name
    the user's cell and its line numbers as typed.
    """
    __tracebackhide__ = True  # a failing cell shows its own frames, not this machinery
    filename, tree = compile_body(shell, body if body is not None else code, code)
    last = None
    # As in a plain cell: a trailing ';' (not one inside a comment) hides the last value.
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not shell.displayhook.semicolon_at_end_of_expression(code):
        last = tree.body.pop()
    flags = getattr(shell.compile, "flags", 0)
    try:
        head = compile(tree, filename, "exec", flags=flags, dont_inherit=True) if tree.body else None
        expression = ast.Expression(last.value) if last is not None else None  # type: ignore[attr-defined]
        tail = compile(expression, filename, "eval", flags=flags, dont_inherit=True) if expression else None
    except SyntaxError as exc:
        if "await" in str(exc.msg):
            # A cell magic runs synchronously inside the kernel's running event loop.
            raise UsageError(
                "%%cached cannot run top-level await; cache the async function with "
                "sci_ext.core.cache_result and await it in a plain cell"
            ) from None
        raise
    if head is not None:
        exec(head, shell.user_global_ns, shell.user_ns)  # noqa: S102  # nosec B102
    if tail is None:
        return None
    return eval(tail, shell.user_global_ns, shell.user_ns)  # noqa: S307  # nosec B307  # the user's own cell


def _rebind(value: Any, ns: dict[str, Any], main: set[str]) -> Any:
    """Point a restored notebook function (or class's methods) at the live namespace.

    Unpickled functions get a private copy of their globals; the notebook's
    functions must see the notebook's globals, as if the cell had run.
    """
    if isinstance(value, types.FunctionType) and value.__module__ in main and value.__globals__ is not ns:
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
                setattr(value, attr, _rebind(member, ns, main))
            elif isinstance(member, (staticmethod, classmethod)) and isinstance(member.__func__, types.FunctionType):
                setattr(value, attr, type(member)(_rebind(member.__func__, ns, main)))
    return value


def _restore(shell: Any, payload: dict[str, Any]) -> list[str]:
    ns = shell.user_ns
    main = _main_modules(ns)
    values = {name: _rebind(v, ns, main) for name, v in payload["vars"].items()}
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


def _collect(
    ns: dict[str, Any],
    before: dict[str, Any],
    *,
    analysis: CellAnalysis,
    opts: CellOptions,
    inputs: list[str],
    digests: dict[str, str],
) -> tuple[dict[str, Any], list[str]]:
    """The names to store after a successful run, and the names the cell deleted."""
    if opts.outputs is not None:
        missing = [n for n in opts.outputs if n not in ns]
        if missing:
            _warn(f"sci_ext warning: --outputs names {', '.join(missing)}, which the cell did not bind")
        names = {n for n in opts.outputs if n in ns}
    else:
        changed = {n for n, v in ns.items() if (n not in before or before[n] is not v) and not _INTERNAL.match(n)}
        names = ({n for n in analysis.outputs if n in ns} | changed) - {n for n in ns if _INTERNAL.match(n)}
    deleted = sorted(n for n in before if n not in ns and not _INTERNAL.match(n))
    # Inputs changed in place (df["x"] = ..., lst.append(...)) are outputs too.
    main = _main_modules(ns)
    for name in inputs:
        if name in names or name not in ns or digests.get(name, "<").startswith("<"):
            continue
        try:
            hasher = ValueHasher(main, opts.ignore)
            hasher.update(ns[name], name)
            if hasher.digest() != digests[name]:
                names.add(name)
        except UnhashableInput:
            names.add(name)
    return {n: ns[n] for n in sorted(names)}, deleted


def _split_modules(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    plain = {n: v for n, v in values.items() if not isinstance(v, types.ModuleType)}
    modules = {n: v.__name__ for n, v in values.items() if isinstance(v, types.ModuleType)}
    return plain, modules


def _redactor() -> Any:
    """The secret redactor of this process, or None when the security feature is absent."""
    try:
        from ..core.security.redact import get_redactor
    except ImportError:  # pragma: no cover - the security feature ships with sci_ext
        return None
    return get_redactor()


def _secret_holders(values: dict[str, Any], redactor: Any) -> list[str]:
    """Names of the values whose serialized form contains a known secret value."""
    import cloudpickle

    holders = []
    for name, value in values.items():
        try:
            text = cloudpickle.dumps(value, protocol=5).decode("utf-8", "surrogateescape")
        except Exception:  # noqa: S112  # nosec B112  # unpicklable values are reported by the store step
            continue
        if redactor.redact(text) != text:
            holders.append(repr(name))
    return holders


def _storable_result(value: Any, redactor: Any) -> bool:
    """Can the cell's result value be stored with it (picklable, holding no secret)?"""
    import cloudpickle

    try:
        # Buffers out of band: checking a large array must not copy it.
        cloudpickle.dumps(value, protocol=5, buffer_callback=lambda _buf: True)
    except Exception:
        return False
    return not (redactor and _secret_holders({"result": value}, redactor))


def _unpicklable(values: dict[str, Any]) -> list[str]:
    import cloudpickle

    from ..core.security.redact import shorten

    bad = []
    for name, value in values.items():
        try:
            cloudpickle.dumps(value, protocol=5, buffer_callback=lambda _buf: False)
        except Exception as exc:
            bad.append(f"{name!r} ({type(exc).__name__}: {shorten(str(exc), 120)})")
    return bad


def _lookup(store: LayeredStore, key: str, shell: Any, label: str) -> tuple[dict[str, Any], str] | None:
    """The stored payload of ``key``, or None (a corrupt entry warns, is dropped, and misses)."""
    try:
        found = store.get(key)
        if found is None:
            return None
        buffer, layer = found
        payload, _meta = unpack(buffer)
        if not isinstance(payload, dict) or "vars" not in payload:
            raise CorruptEntry("entry holds no cell payload")
        return payload, layer
    except Exception as exc:  # corrupt, truncated, unreadable: a miss, never a crash
        reason = str(exc) if isinstance(exc, CorruptEntry) else f"{type(exc).__name__}: {exc}"
        _warn(f"sci_ext warning: cache entry of {label} unreadable ({reason}); running the cell")
        stats.record(stats.CacheEvent("cell", store.local.backend, "error", label))
        with contextlib.suppress(Exception):  # best effort; the new entry replaces it anyway
            store.delete(key)
        return None


def _hit(
    shell: Any, store: LayeredStore, key: str, found: tuple[dict[str, Any], str], opts: CellOptions
) -> CellRun | None:
    """Restore a found entry; ``None`` (a miss, with a warning) if it cannot be restored here."""
    payload, layer = found
    try:
        names = _restore(shell, payload)
    except Exception as exc:  # e.g. a module it imported is not installed in this kernel
        _warn(f"sci_ext warning: cache entry cannot be restored here ({type(exc).__name__}: {exc}); running the cell")
        return None
    set_rng_state(payload.get("rng") or {})
    replay(shell, payload["events"])
    annotate.hit("cell", opts.name, payload.get("annotations"))
    try:
        store.count_hit(key)
        if isinstance(store.local, DiskStore):
            store.local.count("hits")
    except Exception:  # noqa: S110  # nosec B110  # a counter must not fail a hit
        pass
    SESSION.hits += 1
    stats.record(stats.CacheEvent("cell", layer, "hit", opts.name))
    if not opts.quiet and get_config().cache.notify:
        label = f"'{opts.name}' " if opts.name else ""
        shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "") if names else "no variables"
        print(f"[sci_ext] cached cell {label}restored from {layer}: {shown} (key {key[:8]})", flush=True)
    result = payload.get("result")
    value: Any = None
    if "value" in payload:
        value = _rebind(payload["value"], shell.user_ns, _main_modules(shell.user_ns))
    elif result:  # a result that could not be stored as a value: its display only
        value = _ReplayedResult(*result)
    if result:
        show_stored(shell, value, (result[0], result[1]))
    run = CellRun(key, "hit", layer, names, value)
    SESSION.last = run
    return run


def run_cached_cell(shell: Any, cell: str, opts: CellOptions) -> CellRun:
    """Run one ``%%cached`` cell: restore it on a hit, else run, show live and store."""
    __tracebackhide__ = True
    code = shell.transform_cell(cell)
    analysis = analyze(code)
    inputs = input_names(analysis, opts)
    label = f"cell '{opts.name}'" if opts.name else "this cell"
    try:
        store = open_store(opts.backend)
    except (OSError, sqlite3.Error, CacheError) as exc:
        # An unusable cache.dir (a file, no permission, disk full) must not stop the research.
        _warn(f"sci_ext warning: not cached: the cache cannot be opened ({type(exc).__name__}: {exc})")
        run = CellRun(status="uncached")
        run.result = _execute(shell, code, cell)
        SESSION.last = run
        return run
    try:
        digests = hash_inputs(shell.user_ns, inputs, opts.ignore)
    except UnhashableInput as exc:
        _warn(
            f"sci_ext warning: not cached: {exc}. Leave it out of the key with --ignore {exc.variable} "
            "(only if it does not change the result) or list the inputs with --inputs"
        )
        run = CellRun(status="uncached")
        run.result = _execute(shell, code, cell)
        SESSION.last = run
        return run
    hidden = find_hidden(code, shell.user_ns, set(analysis.outputs), inputs, _main_modules(shell.user_ns))
    if hidden.unknowable and opts.inputs is None:
        _warn(
            f"sci_ext warning: not cached: the cell reads variables through {hidden.unknowable[0]}; "
            "list what it reads with --inputs a,b to cache it"
        )
        run = CellRun(status="uncached")
        run.result = _execute(shell, code, cell)
        SESSION.last = run
        return run
    try:
        digests.update(_hidden_digests(shell.user_ns, hidden, opts))
    except UnhashableInput as exc:
        _warn(f"sci_ext warning: not cached: {exc}. List the inputs with --inputs to cache it")
        run = CellRun(status="uncached")
        run.result = _execute(shell, code, cell)
        SESSION.last = run
        return run
    key = cell_key(code, analysis, digests, opts)
    if not opts.force:
        found = _lookup(store, key, shell, label)
        restored = _hit(shell, store, key, found, opts) if found is not None else None
        if restored is not None:
            return restored
    lock = _key_lock(store, key)
    try:
        if lock is not None and not opts.force:
            from filelock import Timeout

            try:
                lock.acquire(timeout=0)
            except Timeout:
                print("[sci_ext] another kernel is computing this cell; waiting for its result", flush=True)
                lock.acquire(poll_interval=0.05)
                found = _lookup(store, key, shell, label)
                restored = _hit(shell, store, key, found, opts) if found is not None else None
                if restored is not None:
                    return restored
        elif lock is not None:
            lock.acquire(poll_interval=0.05)
        return _miss(
            shell,
            store,
            key=key,
            code=code,
            body=cell,
            rng=hidden.rng,
            analysis=analysis,
            inputs=inputs,
            digests=digests,
            opts=opts,
        )
    finally:
        if lock is not None and lock.is_locked:
            lock.release()


def _key_lock(store: LayeredStore, key: str) -> Any:
    if not isinstance(store.local, DiskStore):
        return None
    from filelock import FileLock

    from ..core.trust import ensure_private_dir

    locks = ensure_private_dir(store.local.directory / ".locks", what="cache lock directory")
    return FileLock(str(locks / f"{key}.lock"), mode=0o600)


def _miss(
    shell: Any,
    store: LayeredStore,
    *,
    key: str,
    code: str,
    body: str,
    rng: set[str],
    analysis: CellAnalysis,
    inputs: list[str],
    digests: dict[str, str],
    opts: CellOptions,
) -> CellRun:
    __tracebackhide__ = True
    ns = shell.user_ns
    before = dict(ns)
    started = time.time()
    handles = annotate.begin()
    with LiveCapture(shell) as capture:
        try:
            value = _execute(shell, code, body)
            _flush_inline_figures()
        except BaseException:
            annotate.end(handles)
            # Leave no partial state: names the cell bound or deleted go back to how they were.
            for name in [n for n in ns if n not in before and not _INTERNAL.match(n)]:
                del ns[name]
            for name, old in before.items():
                if ns.get(name, _GONE) is not old:
                    ns[name] = old
            raise
    notes = annotate.end(handles)
    SESSION.misses += 1
    stats.record(stats.CacheEvent("cell", store.local.backend, "miss", opts.name))
    if isinstance(store.local, DiskStore):
        try:
            store.local.count("misses")
        except Exception:  # noqa: S110  # nosec B110  # counters are best effort
            pass
    result = None
    if value is not None:
        data, metadata = shell.display_formatter.format(value)
        result = (data, metadata)
        # Formatted once: the cell shows exactly what is stored and replayed on a hit.
        show_stored(shell, value, result)
    values, deleted = _collect(ns, before, analysis=analysis, opts=opts, inputs=inputs, digests=digests)
    plain, modules = _split_modules(values)
    sharing = aliasing.plan(ns, plain, before, set(inputs), _INTERNAL.match)
    if sharing.problem:
        _warn(f"sci_ext warning: not cached: {sharing.problem}; the cell runs every time")
        run = CellRun(key, "uncached", store.backend, sorted(values), value)
        SESSION.last = run
        return run
    for name in [*sharing.aliases, *sharing.views]:
        plain.pop(name, None)
    events: list[Any] = capture.events
    redactor = _redactor()
    if redactor:
        # Secret values never reach the disk: outputs are stored as the frontend saw them,
        # and a variable holding a secret keeps the whole cell out of the cache.
        holders = _secret_holders(plain, redactor)
        if holders:
            _warn(
                f"sci_ext warning: not cached: {', '.join(holders)} hold(s) a secret value; "
                "secrets are never written to the cache"
            )
            run = CellRun(key, "uncached", store.backend, sorted(values), value)
            SESSION.last = run
            return run
        events = redactor.redact_data(events)
        result = redactor.redact_data(result)
    payload = {"vars": plain, "modules": modules, "deleted": deleted, "events": events, "result": result}
    payload.update(inplace=sharing.inplace, aliases=sharing.aliases, views=sharing.views)
    if rng:
        # A hit leaves the global generators where the cell left them, as running it would.
        payload["rng"] = rng_state(rng)
    if notes:
        payload["annotations"] = notes
    if value is not None and _storable_result(value, redactor):
        # A hit then gives Out[n] and `_` the value itself, as a miss does, not only its display.
        payload["value"] = value
    cfg = get_config().cache
    ttl = opts.ttl if opts.ttl is not None else cfg.ttl_seconds
    info = EntryInfo(
        key=key,
        name=opts.name,
        kind="cell",
        size=0,
        created=started,
        expires=started + ttl if ttl is not None else None,
        backend=store.backend,
    )
    run = CellRun(key, "miss", store.backend, sorted(values), value)
    SESSION.last = run
    try:
        packed = pack(payload, meta={"info": _info_dict(info)}, mmap_min_bytes=cfg.mmap_min_bytes)
    except Exception:
        bad = _unpicklable({**plain, "<outputs>": capture.events}) or ["(unknown)"]
        _warn(f"sci_ext warning: not cached: cannot serialize {', '.join(bad)}; nothing stored")
        run.status = "uncached"
        return run
    info.size = packed.nbytes
    try:
        store.set(key, packed, info, ttl)
        stats.record(stats.CacheEvent("cell", store.local.backend, "store", opts.name, packed.nbytes))
    except Exception as exc:
        _warn(f"sci_ext warning: not cached: storing failed ({type(exc).__name__}: {exc})")
        run.status = "uncached"
    return run


_GONE = object()


def _info_dict(info: EntryInfo) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(info.to_json())
    return data
