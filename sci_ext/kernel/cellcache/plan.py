"""The key of a cached cell, or why it cannot have one.

:func:`make_plan` turns a cell and its options into a :class:`CellPlan`: the code,
what it reads (:mod:`.analysis`, :mod:`.hidden`), the fingerprint of every key part
(code, each input by name, hidden state, module versions, ``--files``, the
environment) and the key made from them.  Anything that prevents a sound key
raises :class:`Uncacheable` with a one-line reason: the cell then runs plain.
"""

from __future__ import annotations

import ast
import builtins
import functools
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from ...core.cache.keys import UnhashableInput, ValueHasher, hash_files, module_version
from ...core.cache.serialize import FORMAT_VERSION
from .analysis import CellAnalysis, analyze, normalize
from .hidden import HiddenInputs, attribute_value, find_hidden, rng_state
from .source import result_hidden

__all__ = [
    "INTERNAL",
    "CellOptions",
    "CellPlan",
    "Uncacheable",
    "cell_key",
    "hash_inputs",
    "input_names",
    "main_modules",
    "make_plan",
]

# IPython's own bookkeeping names: never inputs, never outputs.
INTERNAL = re.compile(r"^(_|__|___|_i+|_i\d+|_\d+|_oh|_ih|_dh|_sh|In|Out|exit|quit|get_ipython)$")


class Uncacheable(Exception):
    """The cell cannot be cached; it runs plain and ``reason`` (one line) says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
class CellPlan:
    """Everything known about a cell before it runs or is restored."""

    code: str
    body: str
    opts: CellOptions
    analysis: CellAnalysis
    inputs: list[str]
    hidden: HiddenInputs
    #: ``{part: fingerprint}``: ``code``, ``input NAME``, ``<rng> numpy``, ``module numpy``, ...
    parts: dict[str, str]
    key: str = ""
    #: Set-up magics a hit runs again (``("matplotlib", "inline")``).
    replayed: list[tuple[str, str]] = field(default_factory=list)
    #: Statements that set library state (``plt.style.use(...)``), run again on a hit.
    state: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """How messages name the cell."""
        return f"'{self.opts.name}'" if self.opts.name else "this cell"

    @property
    def identity(self) -> str:
        """The cell across runs: its name, else its normalized code (what explanations compare)."""
        return f"name:{self.opts.name}" if self.opts.name else f"code:{self.parts['code']}"

    @property
    def digests(self) -> dict[str, str]:
        """``{input name: digest}`` of the inputs the AST found (for in-place change detection)."""
        return {p[6:]: d for p, d in self.parts.items() if p.startswith("input ")}


def main_modules(ns: dict[str, Any]) -> set[str]:
    """The module names of the notebook's own functions and classes."""
    return {"__main__", str(ns.get("__name__", "__main__"))}


def input_names(analysis: CellAnalysis, opts: CellOptions) -> list[str]:
    """The inputs that go into the key: ``--inputs`` or the AST's, minus ``--ignore``."""
    names = opts.inputs if opts.inputs is not None else list(analysis.inputs)
    return [n for n in names if n not in opts.ignore and not INTERNAL.match(n)]


def hash_inputs(ns: dict[str, Any], names: list[str], ignore: list[str]) -> dict[str, str]:
    """``{name: digest}`` of each input: its content, ``<absent>`` or ``<builtin>``."""
    digests = {}
    main = main_modules(ns)
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


def _hidden_parts(ns: dict[str, Any], hidden: HiddenInputs, opts: CellOptions) -> dict[str, str]:
    """Fingerprints of the hidden inputs: names read dynamically, module attributes, generator states."""
    extra = [n for n in sorted(hidden.names) if n not in opts.ignore and not INTERNAL.match(n)]
    parts = {f"<dynamic> {n}": d for n, d in hash_inputs(ns, extra, opts.ignore).items()}
    main = main_modules(ns)
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
        parts[f"<attribute> {base}.{path}"] = hasher.digest()
    for which, state in sorted(rng_state(hidden.rng).items()):
        hasher = ValueHasher(main)
        hasher.update(state, f"the global {which} generator state")
        parts[f"<rng> {which}"] = hasher.digest()
    return parts


def _digest(value: Any, label: str) -> str:
    hasher = ValueHasher()
    hasher.update(value, label)
    return hasher.digest()


def _uses_sci_ext(analysis: CellAnalysis, ns: dict[str, Any], inputs: Any) -> str | None:
    """The first sci_ext module or object the cell imports or reads, if any.

    sci_ext keeps its state in its own modules and files, which no key covers: restoring
    such a cell would skip a configuration change, a breaker's wait or a vault write that
    later cells see.
    """
    for module in analysis.imported_modules:
        if module == "sci_ext" or module.startswith("sci_ext."):
            return f"module {module}"
    for name in inputs:
        value = ns.get(name)
        where = value.__name__ if isinstance(value, type(sys)) else getattr(value, "__module__", None)
        if not isinstance(where, str):
            where = type(value).__module__
        if where == "sci_ext" or where.startswith("sci_ext."):
            return f"{name} ({where})"
    return None


def key_parts(code: str, analysis: CellAnalysis, digests: dict[str, str], opts: CellOptions) -> dict[str, str]:
    """The fingerprint of every part of the key, by part name."""
    parts = {"code": _digest(normalize(code), "code")}
    for name, digest in digests.items():
        parts[name if name.startswith("<") else f"input {name}"] = digest
    for module in analysis.imported_modules:
        parts[f"module {module}"] = module_version(module) or local_source(module) or "<unversioned>"
    if opts.files:
        parts["files " + " ".join(opts.files)] = hash_files(opts.files)
    if analysis.reads_environment:
        if analysis.environment_names is not None:
            # Only the variables the cell names: a restart must not change the key.
            for name in analysis.environment_names:
                parts[f"environment {name}"] = _digest(os.environ.get(name), name)
        else:
            parts["environment"] = _digest(sorted(os.environ.items()), "the environment")
    return parts


#: A local module's source digest, remembered with the size and mtime of its files.
_SOURCES: dict[str, tuple[tuple[tuple[str, int, int], ...], str]] = {}
#: Files of a local package read at most to key it; past it, it keys as unversioned.
MAX_PACKAGE_FILES = 300


def local_source(module: str) -> str:
    """``source:<digest>`` of a module no distribution versions (a ``helpers.py`` next to the
    notebook, a local package): its ``.py`` files, so that editing it is a miss ('' if none).

    Remembered by the size and mtime of each file: one ``stat`` per file on a warm hit.
    """
    import importlib.util

    top = module.partition(".")[0]
    loaded = sys.modules.get(top)
    spec = getattr(loaded, "__spec__", None) if loaded is not None else None
    try:
        spec = spec or importlib.util.find_spec(top)
    except (ImportError, ValueError, AttributeError):
        return ""
    if spec is None:
        return ""
    files: list[str] = []
    for location in list(spec.submodule_search_locations or []):
        for root, dirs, names in os.walk(location):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".py"))
            if len(files) > MAX_PACKAGE_FILES:
                return ""
    if not spec.submodule_search_locations and isinstance(spec.origin, str) and spec.origin.endswith(".py"):
        files = [spec.origin]
    try:
        stats = tuple((f, st.st_size, st.st_mtime_ns) for f in files for st in [os.stat(f)])
    except OSError:
        return ""
    if not stats:
        return ""
    known = _SOURCES.get(top)
    if known is not None and known[0] == stats:
        return known[1]
    hasher = ValueHasher()
    try:
        for path in files:
            with open(path, "rb") as handle:
                hasher.tag(path)
                hasher.update(handle.read(), path)
    except OSError:
        return ""
    digest = "source:" + hasher.digest()
    _SOURCES[top] = (stats, digest)
    return digest


def cell_key(code: str, analysis: CellAnalysis, digests: dict[str, str], opts: CellOptions) -> str:
    """The entry key of a cell (a 32-hex-digit xxh3-128 digest)."""
    return key_of(key_parts(code, analysis, digests, opts), opts)


def key_of(parts: dict[str, str], opts: CellOptions) -> str:
    """The key made from the parts, the name, ``--outputs`` and the format version."""
    hasher = ValueHasher()
    hasher.tag(f"sci_ext-cell:{FORMAT_VERSION}:py{sys.version_info[0]}.{sys.version_info[1]}")
    hasher.tag(opts.name)
    for name, digest in sorted(parts.items()):
        hasher.tag(f"{name}={digest}")
    if opts.outputs is not None:
        hasher.tag("outputs " + ",".join(sorted(opts.outputs)))
    return hasher.digest()


#: Cell magics that run another language or a shell: what they read cannot be seen.
_SHELL_MAGICS = frozenset({"bash", "sh", "script", "system", "sx", "perl", "ruby", "python2", "python3", "pypy"})
#: Magics whose argument is Python code the analysis reads (``%time y = f(x)``): keyed like the cell.
_ANALYZED_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
#: Magics that set up the kernel (backend, options, extensions, directory): keyed by their text and
#: run again on a hit, so a hit leaves the kernel set up as running the cell does.
REPLAYED_MAGICS = frozenset(
    {"matplotlib", "config", "load_ext", "reload_ext", "autoreload", "aimport", "precision", "cd", "env", "pylab"}
    | {"xmode"}  # the traceback mode: kernel state, as the others
)


def _ipython_calls(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """``(method, literal string arguments)`` of every ``get_ipython().<method>(...)`` call."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call)
            and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython"
        ):
            args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else "" for a in node.args]
            found.append((node.func.attr, args))
    return found


#: Shell commands that only print (part of) the files they name, with the options that keep them so:
#: ``option -> takes a value``.  Their output is then a function of the files' content, which is keyed.
_PURE_READERS: dict[str, dict[str, bool]] = {
    "head": {"-n": True, "-c": True, "-q": False},
    "tail": {"-n": True, "-c": True, "-q": False},
    "cat": {"-n": False, "-b": False, "-s": False, "-E": False, "-T": False, "-A": False},
    "wc": {"-l": False, "-w": False, "-c": False, "-L": False},
}
#: Characters the shell or IPython would interpret (pipes, redirections, expansions, quoting, globs).
_SHELL_SPECIAL = frozenset("|&;<>()$`\\\"'*?[]{}~#=\n\r\t!")
_COUNT = re.compile(r"^-?\d+$")


def shell_reader_parts(command: str) -> dict[str, str] | None:
    """Key parts of a shell command that only reads the files it names (``head -4 data.csv``), or None.

    Strict on purpose: one of :data:`_PURE_READERS`, only its listed options (``-N`` counts for
    ``head``/``tail``), no character the shell or IPython would interpret, and every other word
    an existing regular file (at least one).  The key is the command and the files' content.
    """
    if not command or any(c in _SHELL_SPECIAL for c in command):
        return None
    words = command.split()
    program, rest = words[0], words[1:]
    allowed = _PURE_READERS.get(program)
    if allowed is None:
        return None
    files: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        if word.startswith("-") and word != "-":
            if program in ("head", "tail") and _COUNT.match(word):
                i += 1
                continue
            takes = allowed.get(word)
            if takes is None:
                return None
            if takes:
                if i + 1 >= len(rest) or not _COUNT.match(rest[i + 1]):
                    return None
                i += 1
            i += 1
            continue
        if not os.path.isfile(word):
            return None
        files.append(word)
        i += 1
    if not files:
        return None  # it would read stdin
    import shutil

    parts = {f"shell !{command}": _digest((command, shutil.which(program) or program), "shell")}
    for path in files:
        parts[f"file {path}"] = hash_files([os.path.abspath(path)])
    return parts


def _piped(shell: Any) -> bool:
    """Does ``!cmd`` print through ``sys.stdout`` (a kernel), where the cell's capture sees it?

    Terminal IPython runs it with the terminal as its output (``system_raw``): a hit could not show it.
    """
    from IPython.core.interactiveshell import InteractiveShell

    return getattr(shell.system, "__func__", None) is not InteractiveShell.system_raw


def magic_parts(code: str, shell: Any = None) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Key parts for the IPython commands inside a cell, and the magics a hit runs again.

    ``%run script.py`` is keyed by the script's content (what the script reads is then seen
    by the safety net, as it runs in this process); set-up magics (``%matplotlib inline``)
    run again on a hit; ``!cmd``, ``%%bash`` and magics that read what no key covers
    (``%whos`` reads the whole namespace) make the cell run uncached, named.
    """
    parts: dict[str, str] = {}
    replayed: list[tuple[str, str]] = []
    for method, args in _ipython_calls(ast.parse(code)):
        if method in ("system", "getoutput"):
            command = args[0] if args else ""
            piped = method == "getoutput" or (shell is not None and _piped(shell))
            reader = shell_reader_parts(command) if piped else None
            if reader is None:
                raise Uncacheable(
                    f"the cell runs the shell command !{command[:40]}, whose reads cannot be seen (only head, "
                    "tail, cat and wc of files it names are keyed); run it in a plain cell"
                )
            parts.update(reader)
            continue
        if method not in ("run_line_magic", "run_cell_magic"):
            continue
        name = args[0] if args else ""
        mark = "%%" if method == "run_cell_magic" else "%"
        if name in _SHELL_MAGICS:
            raise Uncacheable(f"the cell runs {mark}{name}, whose reads cannot be seen; run it in a plain cell")
        if method == "run_line_magic" and name == "run":
            import shlex

            words = [w for w in shlex.split(args[1] if len(args) > 1 else "") if not w.startswith("-")]
            if not words or not os.path.isfile(words[0]):
                raise Uncacheable("the cell runs %run of a script that cannot be found here; run it in a plain cell")
            parts[f"file {words[0]}"] = hash_files([os.path.abspath(words[0])])
        elif method == "run_line_magic" and name in REPLAYED_MAGICS:
            replayed.append((name, args[1] if len(args) > 1 else ""))
        elif name in _ANALYZED_MAGICS:
            from .analysis import strip_magic_options

            text = strip_magic_options(args[-1] if len(args) > 1 else "")
            try:
                ast.parse(text)
            except SyntaxError:
                # Its code cannot be read here, so neither can what it reads or changes.
                raise Uncacheable(
                    f"the cell runs {mark}{name} on code sci_ext cannot read; run it in a plain cell"
                ) from None
        else:
            raise Uncacheable(
                f"the cell runs {mark}{name}, which reads what sci_ext cannot key; run it in a plain cell"
            )
    return parts, replayed


def transform(shell: Any, cell: str) -> str:
    """The cell as Python (IPython's transforms), remembered per text: a warm hit must stay cheap."""
    cache: dict[str, str] = vars(shell).setdefault("_sci_ext_transformed", {})
    code = cache.get(cell)
    if code is None:
        code = shell.transform_cell(cell)
        if "\n" not in cell.strip():
            return code  # a one-line cell may be an automagic, which depends on the namespace
        if len(cache) > 256:
            cache.clear()
        cache[cell] = code
    return code


#: Calls that set library-wide state (a style, display options, warning filters, a config): their
#: effect lives in the library, not in a variable, so a hit runs these statements again.
_STATE_SETTERS = frozenset(
    {
        "set_option",
        "set_printoptions",
        "filterwarnings",
        "simplefilter",
        "resetwarnings",
        "set_theme",
        "set_style",
        "set_context",
        "set_palette",
        "rc",
        "rcdefaults",
        "set_config",
        "manual_seed",
        "setLevel",
        "basicConfig",
        "set_default_dtype",
        "set_float32_matmul_precision",
    }
)


def _chain_names(node: ast.AST) -> list[str]:
    names: list[str] = []
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
        node = node.func if isinstance(node, ast.Call) else node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
    return names[::-1]


@functools.lru_cache(maxsize=256)
def _state_statements(code: str) -> list[str]:
    return state_statements(code)


def state_statements(code: str) -> list[str]:
    """Top-level statements that set library state (``plt.style.use(...)``, ``pd.set_option(...)``,
    ``plt.rcParams["figure.dpi"] = 120``): a hit runs them again, as the cell would."""
    found = []
    for stmt in ast.parse(code).body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            names = _chain_names(stmt.value.func)
            last = names[-1] if names else ""
            if (
                last in _STATE_SETTERS
                or (last == "use" and "style" in names)
                or (last == "update" and "rcParams" in names)
            ):
                found.append(ast.unparse(stmt))
        elif isinstance(stmt, (ast.Assign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                names = _chain_names(target)
                if isinstance(target, (ast.Subscript, ast.Attribute)) and (
                    "rcParams" in names or (len(names) > 2 and names[1] == "options")
                ):
                    found.append(ast.unparse(stmt))
                    break
    return found


_AT_NAME = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


@functools.lru_cache(maxsize=256)
def query_names(code: str) -> frozenset[str]:
    """Variables a literal ``df.query("a > @x")`` / ``df.eval(...)`` string reads (``@x``): pandas
    looks them up in the caller's namespace, so they are inputs although the code names no ``x``."""
    names: set[str] = set()
    if "@" not in code:
        return frozenset()
    for node in ast.walk(ast.parse(code)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("query", "eval")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.update(_AT_NAME.findall(node.args[0].value))
    return frozenset(names)


def make_plan(shell: Any, cell: str, opts: CellOptions) -> CellPlan:
    """The plan of a cell: its code, inputs, key parts and key (:class:`Uncacheable` if none can be made)."""
    code = transform(shell, cell)
    analysis = analyze(code)
    inputs = input_names(analysis, opts)
    ns = shell.user_ns
    try:
        digests = hash_inputs(ns, inputs, opts.ignore)
    except UnhashableInput as exc:
        raise Uncacheable(
            f"{exc}. Leave it out of the key with --ignore {exc.variable} "
            "(only if it does not change the result) or list the inputs with --inputs"
        ) from None
    own = _uses_sci_ext(analysis, ns, inputs)
    if own is not None:
        raise Uncacheable(
            f"the cell uses sci_ext's own {own}, whose state (configuration, breakers, secrets, usage "
            "records) lives outside the notebook's variables; it runs every time"
        )
    hidden = find_hidden(code, ns, set(analysis.outputs), inputs, main_modules(ns))
    hidden.names |= query_names(code)
    if hidden.unknowable and opts.inputs is None:
        raise Uncacheable(
            f"the cell reads variables through {hidden.unknowable[0]}; list what it reads with --inputs a,b to cache it"
        )
    try:
        digests.update(_hidden_parts(ns, hidden, opts))
    except UnhashableInput as exc:
        raise Uncacheable(f"{exc}. List the inputs with --inputs to cache it") from None
    parts = key_parts(code, analysis, digests, opts)
    if result_hidden(shell, code):
        # `x;` shows nothing where `x` shows x (normalize() drops the ';'): what the cell
        # displays is part of what it does, so the two must not share an entry.
        parts["code"] = _digest((parts["code"], "result hidden"), "code")
    replayed: list[tuple[str, str]] = []
    if "get_ipython" in code:
        magic, replayed = magic_parts(code, shell)
        parts.update(magic)
    plan = CellPlan(code, cell, opts, analysis, inputs, hidden, parts, replayed=replayed)
    plan.state = _state_statements(code)
    plan.key = key_of(parts, opts)
    return plan
