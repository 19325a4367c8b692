"""Inputs a cell reads without naming them: global random state, dynamic lookups, module attributes.

The AST's inputs (:mod:`.cells`) are the names a cell loads.  Some state is read
without a name, and a hit that ignored it would be stale:

* the global generators of ``random`` and ``numpy.random`` when the cell (or a
  notebook function it calls) draws from them: their state joins the key, and a
  hit leaves them where the cell left them;
* names read through ``globals()[...]``, ``vars()``, ``locals()``, ``eval`` or
  ``exec``: a literal name or string is analyzed and keyed; anything computed
  cannot be known, and the cell runs uncached with one line naming the construct;
* attributes of modules (``np.pi``, ``mymod.factor``, ``torch.backends.cudnn.deterministic``),
  which another cell may have reassigned: every ``module.attr`` chain the cell
  reads is keyed by its current value.
"""

from __future__ import annotations

import ast
import functools
import sys
import types
from typing import Any

__all__ = ["HiddenInputs", "attribute_value", "find_hidden", "rng_state", "set_rng_state"]

#: numpy.random names that do not touch the global generator.
_NUMPY_OWN_STATE = frozenset(
    {
        "default_rng",
        "Generator",
        "RandomState",
        "SeedSequence",
        "BitGenerator",
        "PCG64",
        "PCG64DXSM",
        "MT19937",
        "Philox",
        "SFC64",
        "bit_generator",
        "mtrand",
    }
)
_RANDOM_OWN_STATE = frozenset({"Random", "SystemRandom"})
_DYNAMIC = frozenset({"globals", "vars", "locals"})
_HELPER_DEPTH = 4


class HiddenInputs:
    """What :func:`find_hidden` found (a plain class: dataclass creation costs a first hit)."""

    __slots__ = ("attributes", "names", "rng", "touched", "unknowable")

    def __init__(self) -> None:
        #: Global generators the cell draws from: ``"random"``, ``"numpy"``.
        self.rng: set[str] = set()
        #: Names read through a literal ``globals()["x"]`` or a literal ``eval("x + 1")``.
        self.names: set[str] = set()
        #: ``module.attr`` chains read, as ``(input name, attribute path)``.
        self.attributes: set[tuple[str, str]] = set()
        #: Constructs whose reads cannot be known (the cell runs uncached).
        self.unknowable: list[str] = []
        #: Global generators the cell uses at all, seeding included: a hit leaves them where the run did.
        self.touched: set[str] = set()


_RELEVANT = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Import, ast.ImportFrom)


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes of ``tree`` a scan looks at, walked once per tree (trees are cached per code)."""
    found: list[ast.AST] | None = getattr(tree, "_sci_nodes", None)
    if found is None:
        found = [node for node in ast.walk(tree) if isinstance(node, _RELEVANT)]
        tree._sci_nodes = found  # type: ignore[attr-defined]
    return found


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _chain(node: ast.AST) -> tuple[str, list[str]] | None:
    """``a.b.c`` -> ("a", ["b", "c"])."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node.id, parts[::-1]
    return None


def _module_kind(value: Any) -> str | None:
    """``random`` / ``numpy`` / ``numpy.random`` for those modules and their global-state functions."""
    if isinstance(value, types.ModuleType):
        return value.__name__ if value.__name__ in ("random", "numpy", "numpy.random") else None
    owner = getattr(value, "__self__", None)
    random = sys.modules.get("random")
    if random is not None and owner is getattr(random, "_inst", None) and owner is not None:
        return "random-function"
    mtrand = sys.modules.get("numpy.random.mtrand")
    if mtrand is not None and owner is getattr(mtrand, "_rand", None) and owner is not None:
        return "numpy-function"
    return None


class _Scan:
    def __init__(self, ns: dict[str, Any], bound: set[str]) -> None:
        self.ns = ns
        self.bound = bound
        self.found = HiddenInputs()
        self.kinds: dict[str, str] = {}

    def kind_of(self, name: str) -> str | None:
        if name in self.kinds:
            return self.kinds[name]
        if name in self.ns and name not in self.bound:
            return _module_kind(self.ns[name])
        return None

    def imports(self, tree: ast.AST) -> None:
        for node in _nodes(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in ("random", "numpy", "numpy.random"):
                        local = alias.asname or alias.name.partition(".")[0]
                        self.kinds[local] = alias.name if alias.asname else alias.name.partition(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                for alias in node.names:
                    local = alias.asname or alias.name
                    if node.module == "random" and alias.name not in _RANDOM_OWN_STATE:
                        self.kinds[local] = "random-function"
                    elif node.module == "numpy" and alias.name == "random":
                        self.kinds[local] = "numpy.random"
                    elif node.module == "numpy.random" and alias.name not in _NUMPY_OWN_STATE:
                        self.kinds[local] = "numpy-function"

    def scan(self, tree: ast.AST) -> None:
        self.imports(tree)
        for node in _nodes(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                kind = self.kind_of(node.id)
                if kind == "random-function":
                    self.found.rng.add("random")
                elif kind == "numpy-function":
                    self.found.rng.add("numpy")
            elif isinstance(node, ast.Attribute):
                self.attribute(node)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                self.call(node)
            elif isinstance(node, ast.Subscript):
                self.subscript(node)

    def attribute(self, node: ast.Attribute) -> None:
        chain = _chain(node)
        if chain is None:
            return
        base, parts = chain
        kind = self.kind_of(base)
        if kind == "random" and parts[0] not in _RANDOM_OWN_STATE:
            self.found.rng.add("random")
        elif (kind == "numpy" and len(parts) >= 2 and parts[0] == "random" and parts[1] not in _NUMPY_OWN_STATE) or (
            kind == "numpy.random" and parts[0] not in _NUMPY_OWN_STATE
        ):
            self.found.rng.add("numpy")
        if base in self.ns and base not in self.bound and isinstance(self.ns[base], types.ModuleType):
            self.found.attributes.add((base, ".".join(parts)))

    def call(self, node: ast.Call) -> None:
        name = node.func.id  # type: ignore[attr-defined]
        if name in self.bound or (name in self.ns and not _is_builtin(self.ns[name], name)):
            return  # the notebook's own function of that name: its code is keyed as an input
        if name in ("eval", "exec"):
            text = _literal(node.args[0]) if node.args else None
            if text is None:
                if _in_function(node):
                    # Runs when the function is called, not when the cell defines it; then the
                    # safety net sees the string compiled and keys the names it reads (or says why not).
                    return
                self.found.unknowable.append(f"{name}() of a computed string")
                return
            from .analysis import analyze

            try:
                nested = analyze(text)
            except SyntaxError:
                return  # fails when it runs, as it would uncached
            self.found.names.update(nested.inputs)
            inner = _Scan(self.ns, self.bound)
            inner.scan(ast.parse(text))
            self.found.rng |= inner.found.rng
            self.found.names |= inner.found.names
            self.found.attributes |= inner.found.attributes
            self.found.unknowable += inner.found.unknowable
        elif name in _DYNAMIC and not (name == "vars" and node.args):
            if name != "globals" and _in_function(node):
                return  # a function's own locals
            parent = getattr(node, "_parent", None)
            if isinstance(parent, ast.Subscript) and _literal(parent.slice) is not None:
                return  # globals()["x"]: a known name (see subscript)
            if isinstance(parent, ast.Attribute) and parent.attr == "get":
                key = _literal_get(parent)
                if key is not None:
                    self.found.names.add(key)  # globals().get("x"): a known name
                    return
            self.found.unknowable.append(f"{name}() (names read through it cannot be known)")

    def subscript(self, node: ast.Subscript) -> None:
        value = node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in _DYNAMIC:
            key = _literal(node.slice)
            if key is not None:
                self.found.names.add(key)


def _literal_get(attr: ast.Attribute) -> str | None:
    call = getattr(attr, "_parent", None)
    if isinstance(call, ast.Call) and call.args:
        return _literal(call.args[0])
    return None


def _in_function(node: ast.AST) -> bool:
    parent = getattr(node, "_parent", None)
    while parent is not None:
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return True
        parent = getattr(parent, "_parent", None)
    return False


_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_SKIP_ATTRIBUTES = frozenset(
    {"environ", "environb", "getenv", "getenvb", "modules", "path", "argv", "stdout", "stderr"}
)


def attribute_value(ns: dict[str, Any], base: str, path: str) -> tuple[str, Any]:
    """What to key for ``base.path``: ``("value", v)`` for values worth keying, else ``("type", name)``.

    Flags, numbers, strings, small plain containers, functions, classes and modules are keyed
    by content (so ``mod.flag = True`` or a monkeypatched function is a miss); large objects
    by their type only (keying ``sys.modules`` or a module's cache would change with every run).
    """
    value: Any = ns[base]
    for part in path.split("."):
        if part in _SKIP_ATTRIBUTES:
            return "type", "<skipped>"
        try:
            value = getattr(value, part)
        except Exception:
            return "type", "<absent>"
    if _module_kind(value) in ("random-function", "numpy-function"):
        # np.random.rand is a method of the global generator: its state is keyed as <rng> already.
        return "type", f"global generator method {path}"
    if type(value) in _PLAIN or isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        return "value", value
    if isinstance(value, (types.ModuleType, types.MethodType)):
        return "value", value
    if isinstance(value, (list, tuple, set, frozenset, dict)) and len(value) <= 64:
        items = list(value.items()) if isinstance(value, dict) else list(value)
        flat = [x for item in items for x in (item if isinstance(value, dict) else (item,))]
        if all(type(x) in _PLAIN for x in flat):
            return "value", value
    kind = type(value)
    return "type", f"{kind.__module__}.{kind.__qualname__}"


def _is_builtin(value: Any, name: str) -> bool:
    import builtins

    return getattr(builtins, name, None) is value


@functools.lru_cache(maxsize=256)
def _tree(code: str) -> ast.Module:
    """The parsed cell with parent links (cached: a hit must stay cheap; the tree is only read)."""
    tree = ast.parse(code)
    _link_parents(tree)
    return tree


def _link_parents(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child._parent = node  # type: ignore[attr-defined]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node.func._parent = node  # type: ignore[attr-defined]


def _helper_rng(value: Any, main: set[str], seen: set[int], depth: int) -> set[str]:
    """Global generators a notebook function draws from, through the globals it reads."""
    if depth > _HELPER_DEPTH or id(value) in seen:
        return set()
    seen.add(id(value))
    found: set[str] = set()
    if isinstance(value, type) and value.__module__ in main:
        for member in vars(value).values():
            func = getattr(member, "__func__", member)
            if isinstance(func, types.FunctionType):
                found |= _helper_rng(func, main, seen, depth + 1)
        return found
    if not isinstance(value, types.FunctionType) or value.__module__ not in main:
        return found
    names = _code_names(value.__code__)
    for name in names:
        target = value.__globals__.get(name)
        kind = _module_kind(target)
        if kind == "random-function":
            found.add("random")
        elif kind == "numpy-function":
            found.add("numpy")
        elif kind in ("random", "numpy", "numpy.random"):
            found |= _module_draws(value.__code__, value.__globals__)
        elif isinstance(target, (types.FunctionType, type)):
            found |= _helper_rng(target, main, seen, depth + 1)
    return found


def _module_draws(code: types.CodeType, namespace: dict[str, Any]) -> set[str]:
    """Global generators a function's bytecode draws from through a module: ``random.random()``,
    ``np.random.rand()``; ``np.random.default_rng(seed)`` and ``random.Random(seed)`` have their own state.

    Read from the instructions (a global module, then its attributes), not from the bare names: a
    name like ``normal`` is both ``np.random.normal`` (global state) and ``rng.normal`` (not).
    """
    import dis

    found: set[str] = set()
    chain: list[str] = []
    kind: str | None = None
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_GLOBAL":
            kind = _module_kind(namespace.get(str(ins.argval)))
            chain = []
        elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and kind is not None:
            chain.append(str(ins.argval))
            numpy_draw = (kind == "numpy.random" and chain[0] not in _NUMPY_OWN_STATE) or (
                kind == "numpy" and len(chain) >= 2 and chain[0] == "random" and chain[1] not in _NUMPY_OWN_STATE
            )
            if kind == "random" and chain[0] not in _RANDOM_OWN_STATE:
                found.add("random")
            elif numpy_draw:
                found.add("numpy")
            if len(chain) >= 2 or kind != "numpy":
                kind = None
        elif ins.opname not in ("PRECALL", "CACHE", "EXTENDED_ARG"):
            kind = None
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _module_draws(const, namespace)
    return found


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def find_hidden(code: str, ns: dict[str, Any], bound: set[str], inputs: list[str], main: set[str]) -> HiddenInputs:
    """The hidden inputs of ``code`` (plain Python), given the namespace it will run in.

    ``bound`` are the names the cell binds itself, ``inputs`` the names it reads.
    """
    tree = _tree(code)
    scan = _Scan(ns, bound)
    scan.scan(tree)
    found = scan.found
    seen: set[int] = set()
    for name in inputs:
        if name in ns:
            found.rng |= _helper_rng(ns[name], main, seen, 0)
    found.touched = set(found.rng)
    if "random" in found.rng and _seeds_first(tree, scan, "random"):
        found.rng.discard("random")
    if "numpy" in found.rng and _seeds_first(tree, scan, "numpy"):
        found.rng.discard("numpy")
    return found


def _seeds_first(tree: ast.Module, scan: _Scan, which: str) -> bool:
    """Does the cell's first statement that uses generator ``which`` seed it (``random.seed(0)``)?

    Then the state before the cell does not matter: the seed is in the code, which is keyed.
    """
    for stmt in tree.body:
        sub = _Scan(scan.ns, scan.bound)
        sub.kinds = scan.kinds
        sub.scan(stmt)
        if which not in sub.found.rng:
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and stmt.value.args:
            chain = _chain(stmt.value.func)
            return chain is not None and chain[1][-1:] == ["seed"]
        return False
    return False


def rng_state(which: set[str]) -> dict[str, Any]:
    """The current state of the global generators in ``which``."""
    states: dict[str, Any] = {}
    if "random" in which:
        import random

        states["random"] = random.getstate()
    if "numpy" in which:
        import numpy

        states["numpy"] = numpy.random.get_state()
    return states


def set_rng_state(states: dict[str, Any]) -> None:
    """Put the global generators where a cell left them (after a hit)."""
    if "random" in states:
        import random

        random.setstate(states["random"])
    if "numpy" in states:
        import numpy

        numpy.random.set_state(states["numpy"])
