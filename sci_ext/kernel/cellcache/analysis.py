"""What a cell reads and what it binds, from its AST.

*Inputs* are the names a cell loads at a point where it has not bound them yet
in straight-line code (so ``x = x + 1`` and ``x += 1`` read ``x``), plus the
global names read inside the functions, lambdas, classes and comprehensions it
defines (they may run later, against whatever the notebook holds).  Binding in
an ``if``/``for``/``while``/``try`` body does not count as bound afterwards:
the branch may not run.  Over-reporting only costs a hash; missing an input
would make a stale hit, so every doubt goes to "input".

*Outputs* are every name the cell binds at module level: assignments (also in
``for``/``with`` targets and nested blocks), augmented assignments, imports
(``import a.b`` binds ``a``), ``def``, ``class``, walrus targets (also inside
comprehensions), names declared ``global`` in functions it defines, and ``del``.
"""

from __future__ import annotations

import ast
import functools
import re
import symtable
from dataclasses import dataclass, field
from typing import cast

__all__ = ["CellAnalysis", "analyze", "normalize"]


@dataclass(frozen=True)
class CellAnalysis:
    """The result of :func:`analyze`."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    imported_modules: tuple[str, ...]
    deleted: tuple[str, ...] = field(default=())
    star_import: bool = False
    last_expression: bool = False
    #: The cell reads environment variables (``os.environ``, ``os.getenv``): they join the key.
    reads_environment: bool = False
    #: The variables it reads when every read names one literally (``os.getenv("DATA_DIR")``);
    #: None when some read is dynamic (``os.environ[name]``, ``dict(os.environ)``): all of them count.
    environment_names: tuple[str, ...] | None = None


@functools.lru_cache(maxsize=256)
def normalize(code: str) -> str:
    """The cell's code without comments and formatting (``ast.unparse``), the part of the key."""
    return ast.unparse(ast.parse(code))


@functools.lru_cache(maxsize=256)
def analyze(code: str) -> CellAnalysis:
    """Inputs and outputs of ``code`` (plain Python: IPython syntax already transformed).

    >>> a = analyze("y = x + 1\\nimport numpy as np\\nfor i in range(y): total = i")
    >>> a.inputs, a.outputs
    (('range', 'x'), ('i', 'np', 'total', 'y'))
    """
    tree = ast.parse(code)
    walker = _Walker()
    walker.block(tree.body, set())
    globals_in_functions = _declared_globals(code)
    outputs = walker.bound | globals_in_functions
    inputs = walker.loads | _nested_global_reads(code, walker.bound)
    modules = set(walker.modules)
    # `%time y = f(x)` becomes get_ipython().run_line_magic('time', 'y = f(x)'): the code is a
    # string.  Analyze such strings too, or x would be missing from the key.
    for text in _magic_arguments(tree):
        try:
            nested = analyze(_transform(text))
        except (SyntaxError, ValueError):
            continue  # not Python (e.g. %sci_config key=value): nothing to read
        inputs |= set(nested.inputs)
        outputs |= set(nested.outputs)
        modules |= set(nested.imported_modules)
    reads_environment = any(
        (isinstance(node, ast.Attribute) and node.attr in _ENV_NAMES)
        or (isinstance(node, ast.Name) and node.id in _ENV_NAMES)
        or (isinstance(node, ast.alias) and node.name in _ENV_NAMES)
        for node in ast.walk(tree)
    )
    return CellAnalysis(
        reads_environment=reads_environment,
        environment_names=_literal_environment_names(tree) if reads_environment else None,
        inputs=tuple(sorted(inputs)),
        outputs=tuple(sorted(outputs)),
        imported_modules=tuple(sorted(modules)),
        deleted=tuple(sorted(walker.deleted)),
        star_import=walker.star,
        last_expression=bool(tree.body) and isinstance(tree.body[-1], ast.Expr),
    )


_TRY_NODES: tuple[type, ...] = (ast.Try, *((ast.TryStar,) if hasattr(ast, "TryStar") else ()))


_ENV_NAMES = frozenset({"environ", "environb", "getenv", "getenvb"})


def _is_env_node(node: ast.AST, names: frozenset[str]) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in names) or (isinstance(node, ast.Name) and node.id in names)


def _literal_environment_names(tree: ast.Module) -> tuple[str, ...] | None:
    """The variables named in ``getenv("X")``, ``environ["X"]``, ``environ.get("X")``, ``"X" in environ``.

    None if any other use of the environment appears (then the whole environment is keyed).
    Keying only the variables read keeps per-process ones (``JPY_PARENT_PID``, ``SSH_CONNECTION``)
    from making every restart a miss.
    """
    names: set[str] = set()
    covered: set[int] = set()
    mapping = frozenset({"environ", "environb"})

    def literal(node: ast.AST | None) -> str | None:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    for node in ast.walk(tree):
        key: str | None = None
        env: ast.AST | None = None
        if isinstance(node, ast.Call) and node.args:
            if _is_env_node(node.func, frozenset({"getenv", "getenvb"})):
                key, env = literal(node.args[0]), node.func
            elif (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in ("get", "pop", "setdefault")
                and _is_env_node(node.func.value, mapping)
            ):
                key, env = literal(node.args[0]), node.func.value
        elif isinstance(node, ast.Subscript) and _is_env_node(node.value, mapping):
            key, env = literal(node.slice), node.value
        elif (
            isinstance(node, ast.Compare) and len(node.comparators) == 1 and _is_env_node(node.comparators[0], mapping)
        ):
            key, env = literal(node.left), node.comparators[0]
        if key is not None and env is not None:
            names.add(key)
            covered.add(id(env))
    for node in ast.walk(tree):
        if isinstance(node, ast.alias):
            continue  # `from os import environ, getenv`: the import itself reads nothing
        if _is_env_node(node, _ENV_NAMES) and id(node) not in covered:
            return None
    return tuple(sorted(names))


def _magic_arguments(tree: ast.Module) -> list[str]:
    """The string arguments of ``get_ipython().run_line_magic/run_cell_magic(...)`` calls."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("run_line_magic", "run_cell_magic")
        ):
            for arg in node.args[1:]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.strip():
                    found.append(strip_magic_options(arg.value))
    return found


_OPTIONS = re.compile(r"^(?:\s*-[A-Za-z]+(?:\s*\d+(?:\.\d+)?)?(?=\s))*\s*")


def strip_magic_options(text: str) -> str:
    """A magic's argument without its leading options (``-n1 -r 3 f(x)`` -> ``f(x)``)."""
    return _OPTIONS.sub("", text, count=1) if text.lstrip().startswith("-") else text


def _transform(text: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return str(TransformerManager().transform_cell(text))


class _Walker:
    """Walks module-level statements in order, tracking definitely-bound names."""

    def __init__(self) -> None:
        self.loads: set[str] = set()
        self.bound: set[str] = set()
        self.deleted: set[str] = set()
        self.modules: set[str] = set()
        self.star = False

    # Statements ---------------------------------------------------------
    def block(self, body: list[ast.stmt], definite: set[str]) -> None:
        for stmt in body:
            self.stmt(stmt, definite)

    def stmt(self, node: ast.stmt, definite: set[str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # Decorators, defaults, bases run now; the body's global reads are found by symtable.
            for expr in [*node.decorator_list, *_def_time_exprs(node)]:
                self.expr(expr, definite)
            self.bind(node.name, definite)
        elif isinstance(node, ast.Assign):
            self.expr(node.value, definite)
            for target in node.targets:
                self.target(target, definite)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.expr(node.value, definite)
                self.target(node.target, definite)
            self.expr(node.annotation, definite)
        elif isinstance(node, ast.AugAssign):
            # x += 1 reads x first.
            self.expr(_as_load(node.target), definite)
            self.expr(node.value, definite)
            self.target(node.target, definite)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self.imports(node, definite)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter, definite)
            inner = set(definite)
            self.target(node.target, inner)
            self.block(node.body, inner)
            self.block(node.orelse, set(definite))
        elif isinstance(node, (ast.While, ast.If)):
            self.expr(node.test, definite)
            self.block(node.body, set(definite))
            self.block(node.orelse, set(definite))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expr(item.context_expr, definite)
                if item.optional_vars is not None:
                    self.target(item.optional_vars, definite)
            self.block(node.body, definite)
        elif isinstance(node, _TRY_NODES):
            node = cast(ast.Try, node)  # TryStar has the same fields
            self.block(node.body, set(definite))
            for handler in node.handlers:
                inner = set(definite)
                if handler.type is not None:
                    self.expr(handler.type, inner)
                if handler.name:
                    self.bind(handler.name, inner)
                self.block(handler.body, inner)
            self.block(node.orelse, set(definite))
            self.block(node.finalbody, set(definite))
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.deleted.add(target.id)
                    definite.discard(target.id)
                    self.bound.add(target.id)
                else:
                    self.expr(target, definite)
        elif isinstance(node, ast.Global):
            pass  # module level: a no-op
        elif isinstance(node, ast.Match):
            self.expr(node.subject, definite)
            for case in node.cases:
                inner = set(definite)
                for name in _pattern_names(case.pattern):
                    self.bind(name, inner)
                for sub in ast.walk(case.pattern):
                    if isinstance(sub, ast.expr):
                        self.expr(sub, inner)
                if case.guard is not None:
                    self.expr(case.guard, inner)
                self.block(case.body, inner)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, definite)
                elif isinstance(child, ast.stmt):
                    self.stmt(child, definite)

    def imports(self, node: ast.Import | ast.ImportFrom, definite: set[str]) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.modules.add(alias.name)
                self.bind(alias.asname or alias.name.partition(".")[0], definite)
            return
        if node.level == 0 and node.module:
            self.modules.add(node.module)
        for alias in node.names:
            if alias.name == "*":
                self.star = True
            else:
                self.bind(alias.asname or alias.name, definite)

    def bind(self, name: str, definite: set[str]) -> None:
        self.bound.add(name)
        definite.add(name)

    def target(self, node: ast.expr, definite: set[str]) -> None:
        if isinstance(node, ast.Name):
            self.bind(node.id, definite)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self.target(elt, definite)
        elif isinstance(node, ast.Starred):
            self.target(node.value, definite)
        else:
            # obj.attr = ... / obj[i] = ... reads obj (an in-place change of an input).
            self.expr(node, definite)

    # Expressions --------------------------------------------------------
    def expr(self, node: ast.expr, definite: set[str]) -> None:
        for sub in _walk_same_scope(node):
            if isinstance(sub, ast.Name):
                if isinstance(sub.ctx, ast.Load) and sub.id not in definite:
                    self.loads.add(sub.id)
            elif isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                # Walrus binds in the enclosing (module) scope, even inside comprehensions.
                self.bind(sub.target.id, definite)


def _walk_same_scope(node: ast.expr) -> list[ast.AST]:
    """Nodes of ``node`` in evaluation order, roughly: walrus values before later reads.

    Comprehensions are walked here, with their loop variables excluded: since Python 3.12
    they are inlined and ``symtable`` no longer reports them as scopes of their own.
    Lambda bodies are left to ``symtable`` (see :func:`_nested_global_reads`).
    """
    out: list[ast.AST] = []

    def visit(n: ast.AST, local: frozenset[str]) -> None:
        if isinstance(n, ast.NamedExpr):
            visit(n.value, local)
            out.append(n)
            return
        if isinstance(n, ast.Lambda):
            for d in [*n.args.defaults, *[k for k in n.args.kw_defaults if k is not None]]:
                visit(d, local)
            return
        if isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = set(local)
            for i, gen in enumerate(n.generators):
                # The first iterable runs in the enclosing scope, the rest inside the comprehension.
                visit(gen.iter, local if i == 0 else frozenset(inner))
                inner |= {t.id for t in ast.walk(gen.target) if isinstance(t, ast.Name)}
                for cond in gen.ifs:
                    visit(cond, frozenset(inner))
            parts = (n.key, n.value) if isinstance(n, ast.DictComp) else (n.elt,)
            for part in parts:
                visit(part, frozenset(inner))
            return
        if isinstance(n, ast.Name) and n.id in local:
            return
        out.append(n)
        for child in ast.iter_child_nodes(n):
            visit(child, local)

    visit(node, frozenset())
    return out


def _as_load(target: ast.expr) -> ast.expr:
    if isinstance(target, ast.Name):
        return ast.Name(id=target.id, ctx=ast.Load())
    return target


def _def_time_exprs(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[ast.expr]:
    if isinstance(node, ast.ClassDef):
        return [*node.bases, *(k.value for k in node.keywords)]
    args = node.args
    return [*args.defaults, *(d for d in args.kw_defaults if d is not None)]


def _pattern_names(pattern: ast.pattern) -> list[str]:
    names = []
    for sub in ast.walk(pattern):
        name = getattr(sub, "name", None)
        if isinstance(name, str):
            names.append(name)
        rest = getattr(sub, "rest", None)
        if isinstance(rest, str):
            names.append(rest)
    return names


def _nested_global_reads(code: str, module_bound: set[str]) -> set[str]:
    """Global names read inside the cell's functions, classes, lambdas and comprehensions.

    Names the cell itself binds are left out only when bound at module level in
    the cell; a nested scope may still run before that, but then it would read
    the cell's own (restored) value, which is an output, not an input.
    """
    table = symtable.symtable(code, "<cell>", "exec")
    reads: set[str] = set()

    def visit(tab: symtable.SymbolTable) -> None:
        for child in tab.get_children():
            for sym in child.get_symbols():
                if sym.is_referenced() and sym.is_global() and not sym.is_local():
                    reads.add(sym.get_name())
            visit(child)

    visit(table)
    return {name for name in reads if name not in module_bound}


def _declared_globals(code: str) -> set[str]:
    """Names that functions in the cell declare ``global`` and assign: they are outputs."""
    table = symtable.symtable(code, "<cell>", "exec")
    found: set[str] = set()

    def visit(tab: symtable.SymbolTable) -> None:
        for child in tab.get_children():
            for sym in child.get_symbols():
                if sym.is_declared_global() and sym.is_assigned():
                    found.add(sym.get_name())
            visit(child)

    visit(table)
    return found
