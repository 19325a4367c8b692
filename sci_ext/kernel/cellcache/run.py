"""Run one ``%%cached`` cell: restore it on a hit, else run it live, record it and store it.

A miss is a plain run: the cell's code runs in the user namespace exactly as it
would without the magic (names it bound before raising stay bound), its outputs
appear live and are recorded (:mod:`.capture`), and only then is anything stored.
Every reason a cell cannot be cached goes through one path (:class:`~.plan.Uncacheable`,
:func:`not_cached`): the cell runs plain and one line says why.
"""

from __future__ import annotations

import ast
import contextlib
import re
import sqlite3
import sys
import time
import types
from typing import Any

from IPython.core.error import UsageError

from ...core.cache import annotate, stats
from ...core.cache.admin import open_store
from ...core.cache.keys import UnhashableInput, ValueHasher
from ...core.cache.layered import LayeredStore, get_disk_store
from ...core.cache.serialize import CorruptEntry, pack, read_header, unpack
from ...core.cache.store import EntryInfo
from ...core.config import get_config
from ...core.errors import CacheError
from . import aliasing, auto, explain, safety
from .capture import LiveCapture
from .plan import INTERNAL, CellOptions, CellPlan, Uncacheable, main_modules, make_plan, transform
from .restore import hit, show_live
from .session import SESSION, CellRun
from .source import compile_body, result_hidden

__all__ = ["SESSION", "CellOptions", "CellRun", "not_cached", "run_cached_cell"]


def warn(message: str) -> None:
    """One line on stderr: every line the engine says about a cell (hit notices aside) goes through here.

    In auto mode the line goes through :data:`.auto.notice_sink` instead: shown once per
    cell, or into its report so that a notebook's outputs stay those of a plain run.
    """
    if auto.notice_sink is not None:
        auto.notice_sink(message)
        return
    print(message, file=sys.stderr, flush=True)


def not_cached(reason: str, opts: CellOptions | None = None) -> None:
    """Say, in one line, why a cell runs uncached (the one place that says it)."""
    warn(f"sci_ext warning: not cached: {reason}")


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
        warn(f"sci_ext warning: drawing the cell's figures failed ({type(exc).__name__}: {exc})")


def execute(shell: Any, code: str, body: str | None = None, recorder: Any = None) -> Any:
    """Run ``code`` in the user namespace; return the last expression's value (or None).

    ``body`` is the cell as typed (before IPython's transforms): tracebacks then name
    the user's cell and its line numbers as typed.
    """
    __tracebackhide__ = True  # a failing cell shows its own frames, not this machinery
    filename, tree = compile_body(shell, body if body is not None else code, code)
    last = None
    # As in a plain cell: a trailing ';' (not one inside a comment) hides the last value.
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not result_hidden(shell, code):
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
    if recorder is not None:
        recorder.cell_filename = filename
    try:
        with recorder if recorder is not None else contextlib.nullcontext():
            if head is not None:
                exec(head, shell.user_global_ns, shell.user_ns)  # noqa: S102  # nosec B102
            if tail is None:
                return None
            return eval(tail, shell.user_global_ns, shell.user_ns)  # noqa: S307  # nosec B307  # the user's own cell
    except Exception as exc:
        from .. import tracebacks

        # Shown from the cell's own first frame: no run_cell_magic line, no cache machinery.
        tracebacks.install(shell)
        tracebacks.trim(exc, filename)
        raise


def _run_plain(shell: Any, code: str, body: str, reason: str, opts: CellOptions) -> CellRun:
    """The cell runs uncached: as a plain cell, after one line saying why."""
    __tracebackhide__ = True
    not_cached(reason, opts)
    run = CellRun(status="uncached", reason=reason)
    SESSION.last = run
    run.result = execute(shell, code, body)
    return run


def run_cached_cell(shell: Any, cell: str, opts: CellOptions) -> CellRun:
    """Run one ``%%cached`` cell: restore it on a hit, else run, show live and store."""
    __tracebackhide__ = True
    code = transform(shell, cell)
    try:
        runner_dir = auto.runner_cache_dir()
        if runner_dir is not None:  # a notebook runner's cell: its own cache, the notebook's left alone
            store = LayeredStore(get_disk_store(runner_dir, get_config().cache.size_limit_bytes), None, warn)
        else:
            store = open_store(opts.backend, warn)
    except (OSError, sqlite3.Error, CacheError) as exc:
        # An unusable cache.dir (a file, no permission, disk full) must not stop the research.
        return _run_plain(shell, code, cell, f"the cache cannot be opened ({type(exc).__name__}: {exc})", opts)
    try:
        plan = make_plan(shell, cell, opts)
    except Uncacheable as exc:
        return _run_plain(shell, code, cell, exc.reason, opts)
    stale = ""
    if not opts.force:
        found, stale = lookup(store, plan, shell.user_ns)
        restored = hit(shell, store, plan, found, warn) if found is not None else None
        if restored is not None:
            if SESSION.noted.get(plan.identity) != plan.key:  # a warm hit writes no note
                note = explain.load_note(store, plan.identity, warn)
                files = found[0].get("files") if found else None
                _remember(store, plan, note, comparison=None, status="hit", files=files)
            return restored
    note = explain.load_note(store, plan.identity, warn)
    lock = store.lock(plan.key)
    try:
        if lock is not None and not opts.force:
            from filelock import Timeout

            try:
                lock.acquire(timeout=0)
            except Timeout:
                warn("[sci_ext] another kernel is computing this cell; waiting for its result")
                lock.acquire(poll_interval=0.05)
                found, stale = lookup(store, plan, shell.user_ns)
                restored = hit(shell, store, plan, found, warn) if found is not None else None
                if restored is not None:
                    return restored
        elif lock is not None:
            lock.acquire(poll_interval=0.05)
        helpers = explain.helper_globals(shell.user_ns, plan.inputs, main_modules(shell.user_ns), opts.ignore)
        compared = {**helpers, **plan.parts}
        comparison = explain.compare(note, compared) if note is not None else None
        line = _why_line(plan, note, comparison, stale, frozenset(helpers))
        if line and not opts.quiet:
            warn(line)
        run = _miss(shell, store, plan, helpers)
        run.reason = run.reason or line
        _remember(
            store, plan, note, comparison=comparison, status=run.status, files=run.files, line=line, extra=helpers
        )
        return run
    finally:
        if lock is not None and lock.is_locked:
            lock.release()


def _why_line(plan: CellPlan, note: dict[str, Any] | None, comparison: Any, stale: str, prefer: frozenset[str]) -> str:
    """The one line that says why a cell with a stored run ran ('' for a cell never run before)."""
    if plan.opts.force:
        return ""
    if stale:
        return f"[sci_ext] {plan.label} ran: {stale}"
    if note is None or comparison is None:
        return ""
    line = explain.explain(plan.label, comparison, explain.next_streak(note, comparison), prefer)
    if line:
        return line
    if note.get("status") == "uncached":
        return f"[sci_ext] {plan.label} ran: it was not stored last time ({note.get('reason') or 'see above'})"
    return f"[sci_ext] {plan.label} ran: its stored entry is gone (cleared, expired or evicted)"


def _remember(
    store: LayeredStore,
    plan: CellPlan,
    note: dict[str, Any] | None,
    *,
    comparison: Any,
    status: str,
    files: dict[str, list[Any]] | None,
    line: str = "",
    extra: dict[str, str] | None = None,
) -> None:
    """Leave this run's note: its parts (files included), what it was compared with, the streaks."""
    parts = {**(extra or {}), **plan.parts}
    parts.update(explain.file_parts(files or {}))
    previous = note.get("parts", {}) if note is not None else {}
    record = {
        "parts": parts,
        "previous": previous,
        "streak": explain.next_streak(note, comparison) if status != "hit" else {},
        "status": status,
        "line": line,
        "reason": SESSION.last.reason if SESSION.last is not None and status == "uncached" else "",
        "label": plan.label,
    }
    explain.save_note(store, plan.identity, record)
    SESSION.why[plan.opts.name or ""] = [plan.identity]
    SESSION.noted[plan.identity] = plan.key if status == "hit" else ""


def lookup(
    store: LayeredStore, plan: CellPlan, ns: dict[str, Any] | None = None
) -> tuple[tuple[dict[str, Any], str] | None, str]:
    """``(payload, layer)`` of the plan's key, or None and why ('' when there is no entry).

    A file the stored run read that changed since is a miss naming it, and so is a variable
    that code compiled at run time read (``ns``: the namespace to check it in); a corrupt
    entry warns, is dropped, and misses.
    """
    try:
        found = store.get(plan.key)
        if found is None:
            return None, ""
        buffer, layer = found
        meta = read_header(buffer).get("meta", {})
        files = meta.get("files") or {}
        written = meta.get("written") or {}
        changed = (safety.changed_file(files) if files else "") or (
            safety.changed_file(written, written=True) if written else ""
        )
        if changed:
            return None, changed
        dynamic = meta.get("dynamic")
        if dynamic and ns is not None:
            name = _changed_dynamic(ns, dynamic.get("names") or {}, plan.opts.ignore)
            if name:
                return None, f"input {name}, which {dynamic.get('where', 'a notebook function')} evaluates, changed"
        payload, _meta = unpack(buffer)
        if not isinstance(payload, dict) or "vars" not in payload:
            raise CorruptEntry("entry holds no cell payload")
        payload["files"] = files
        start, length = read_header(buffer)["stream"][:2]
        # A class pickled by value (a notebook class): unpickling it in the kernel that defined it
        # rewrote the live class's methods (see restore.hit).
        payload["classes"] = _BY_VALUE_CLASS.search(buffer, start, start + length) is not None
        return (payload, layer), ""
    except Exception as exc:  # corrupt, truncated, unreadable: a miss, never a crash
        reason = str(exc) if isinstance(exc, CorruptEntry) else f"{type(exc).__name__}: {exc}"
        warn(f"sci_ext warning: cache entry of {plan.label} unreadable ({reason}); running the cell")
        stats.record(stats.CacheEvent("cell", store.local.backend, "error", plan.opts.name))
        with contextlib.suppress(Exception):  # best effort; the new entry replaces it anyway
            store.delete(plan.key)
        return None, ""


#: What cloudpickle writes for a class pickled by value.
_BY_VALUE_CLASS = re.compile(rb"_make_skeleton_class")


def _collect(
    ns: dict[str, Any], before: dict[str, Any], plan: CellPlan, helpers: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The names to store after a successful run, and the names the cell deleted."""
    opts = plan.opts
    if opts.outputs is not None:
        missing = [n for n in opts.outputs if n not in ns]
        if missing:
            warn(f"sci_ext warning: --outputs names {', '.join(missing)}, which the cell did not bind")
        names = {n for n in opts.outputs if n in ns}
    else:
        changed = {n for n, v in ns.items() if (n not in before or before[n] is not v) and not INTERNAL.match(n)}
        names = ({n for n in plan.analysis.outputs if n in ns} | changed) - {n for n in ns if INTERNAL.match(n)}
    deleted = sorted(n for n in before if n not in ns and not INTERNAL.match(n))
    # Inputs changed in place (df["x"] = ..., lst.append(...)) are outputs too.
    main = main_modules(ns)
    digests = dict(plan.digests)
    # Globals the notebook functions it calls read (rng advanced by a helper) changed in place too.
    extra = [p[6:] for p in helpers or {} if p[6:] not in digests]
    digests.update({p[6:]: d for p, d in (helpers or {}).items()})
    for name in [*plan.inputs, *extra]:
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


def _dynamic_inputs(
    ns: dict[str, Any], sources: list[str], bound: set[str], opts: CellOptions
) -> tuple[dict[str, str], str]:
    """``({name: digest}, problem)`` of the variables the strings compiled at run time read.

    Names the cell itself binds are left out (the cell's key decides them); a string that
    cannot be parsed or a value that cannot be hashed is a problem (the cell runs every time).
    """
    import builtins

    from .plan import hash_inputs

    names: set[str] = set()
    for source in sources[:200]:
        tree = None
        for mode in ("eval", "exec"):
            try:
                tree = ast.parse(source, mode=mode)
                break
            except SyntaxError:
                continue
        if tree is None:
            return {}, "code sci_ext cannot read"
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    if len(sources) > 200:
        return {}, "more than 200 strings"
    wanted = sorted(
        n
        for n in names
        if n not in bound and n not in opts.ignore and not INTERNAL.match(n) and (n in ns or not hasattr(builtins, n))
    )
    try:
        return hash_inputs(ns, wanted, opts.ignore), ""
    except UnhashableInput as exc:
        return {}, f"names ({exc})"


def _changed_dynamic(ns: dict[str, Any], digests: dict[str, str], ignore: list[str]) -> str:
    """The first variable read by code compiled at run time whose value differs now ('' if none)."""
    from .plan import hash_inputs

    for name, digest in digests.items():
        try:
            now = hash_inputs(ns, [name], ignore)[name]
        except UnhashableInput:
            return name
        if now != digest:
            return name
    return ""


def _split_modules(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    plain = {n: v for n, v in values.items() if not isinstance(v, types.ModuleType)}
    modules = {n: v.__name__ for n, v in values.items() if isinstance(v, types.ModuleType)}
    return plain, modules


def _redactor() -> Any:
    """The secret redactor of this process, or None when the security feature is absent."""
    try:
        from ...core.security.redact import get_redactor
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
    from ...core.security.redact import shorten

    bad = []
    for name, value in values.items():
        try:
            pack(value)  # with the reducer hooks, as the entry was packed: a client is not named wrongly
        except Exception as exc:
            bad.append(f"{name!r} ({type(exc).__name__}: {shorten(str(exc), 120)})")
    return bad


def _miss(shell: Any, store: LayeredStore, plan: CellPlan, helpers: dict[str, str] | None = None) -> CellRun:
    __tracebackhide__ = True
    ns = shell.user_ns
    opts = plan.opts
    before = dict(ns)
    started = time.time()
    handles = annotate.begin()
    run = CellRun(plan.key, "miss", store.backend)
    SESSION.last = run
    recorder = safety.Recorder(ns)
    with LiveCapture(shell) as capture:
        try:
            value = execute(shell, plan.code, plan.body, recorder)
        finally:
            # A cell that raises keeps what it bound, as a plain cell does; nothing is stored.
            notes = annotate.end(handles)
    events: list[Any] = capture.events
    result = None
    if value is not None:
        # Shown now, before the inline backend's figures, through the displayhook and formatted
        # once, as a plain cell shows it; what it showed is what is stored and replayed on a hit.
        # The recorder watches the formatting: a repr runs notebook code too (a display helper
        # that evals names).
        result, failed = show_live(shell, value, recorder)
        run.shown = True
        if failed or (result is not None and "text/plain" not in result[0]):
            # A formatter failed (the displayhook showed its traceback, once, as in a plain cell):
            # a plain cell shows that error every time, a hit could not, so nothing is stored.
            run.status, run.reason, run.result = "uncached", "showing the cell's result raised", value
            SESSION.misses += 1
            return run
        if result is not None:
            events.append(("result",))
    with LiveCapture(shell) as after:
        _flush_inline_figures()
    events += after.events
    SESSION.misses += 1
    stats.record(stats.CacheEvent("cell", store.local.backend, "miss", opts.name))
    store.count("misses")
    values, deleted = _collect(ns, before, plan, helpers)
    run.names, run.result = sorted(values), value
    dynamic: dict[str, str] = {}
    if recorder.compiled:
        # Code notebook functions compiled from strings (a display helper's eval): the names it
        # reads become inputs of the entry, checked before a hit like files.
        dynamic, problem = _dynamic_inputs(ns, recorder.sources, set(values) | set(deleted), opts)
        if problem:
            where = recorder.compiled[0]
            return _uncached_after_run(run, f"{where} evaluates {problem} at run time; the cell runs every time", opts)
    if recorder.overflow:
        reason = f"the cell read more than {safety.MAX_FILES} files; list them with --files to cache it"
        return _uncached_after_run(run, reason, opts)
    run.files, written = recorder.fingerprints()
    plain, modules = _split_modules(values)
    sharing = aliasing.plan(ns, plain, before, set(plan.inputs), INTERNAL.match)
    if sharing.problem:
        return _uncached_after_run(run, f"{sharing.problem}; the cell runs every time", opts)
    for name in [*sharing.aliases, *sharing.views]:
        plain.pop(name, None)
    redactor = _redactor()
    if redactor:
        # Secret values never reach the disk: outputs are stored as the frontend saw them,
        # and a variable holding a secret keeps the whole cell out of the cache.
        holders = _secret_holders(plain, redactor)
        if holders:
            reason = f"{', '.join(holders)} hold(s) a secret value; secrets are never written to the cache"
            return _uncached_after_run(run, reason, opts)
        events = redactor.redact_data(events)
        result = redactor.redact_data(result)
    payload = {"vars": plain, "modules": modules, "deleted": deleted, "events": events, "result": result}
    payload.update(inplace=sharing.inplace, aliases=sharing.aliases, views=sharing.views)
    if plan.hidden.touched:
        from .hidden import rng_state

        # A hit leaves the global generators where the cell left them, as running it would
        # (also when the cell seeds them: the seed is keyed, the state it leaves is restored).
        payload["rng"] = rng_state(plan.hidden.touched)
    if notes:
        payload["annotations"] = notes
    if value is not None and _storable_result(value, redactor):
        # A hit then gives Out[n] and `_` the value itself, as a miss does, not only its display.
        payload["value"] = value
    cfg = get_config().cache
    ttl = opts.ttl if opts.ttl is not None else cfg.ttl_seconds
    info = EntryInfo(
        key=plan.key,
        name=opts.name,
        kind="cell",
        size=0,
        created=started,
        expires=started + ttl if ttl is not None else None,
        backend=store.backend,
    )
    try:
        meta = {"info": _info_dict(info), "files": run.files, "written": written}
        if dynamic:
            meta["dynamic"] = {"names": dynamic, "where": recorder.compiled[0]}
        packed = pack(payload, meta=meta, mmap_min_bytes=cfg.mmap_min_bytes)
    except Exception:
        bad = _unpicklable({**plain, "<outputs>": events}) or ["(unknown)"]
        return _uncached_after_run(run, f"cannot serialize {', '.join(bad)}; nothing stored", opts)
    info.size = packed.nbytes
    try:
        store.set(plan.key, packed, info, ttl)
        stats.record(stats.CacheEvent("cell", store.local.backend, "store", opts.name, packed.nbytes))
    except Exception as exc:
        return _uncached_after_run(run, f"storing failed ({type(exc).__name__}: {exc})", opts)
    return run


def _uncached_after_run(run: CellRun, reason: str, opts: CellOptions) -> CellRun:
    """The cell ran but cannot be stored: say why, once."""
    not_cached(reason, opts)
    run.status, run.reason = "uncached", reason
    return run


def _info_dict(info: EntryInfo) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(info.to_json())
    return data
