"""Review 2026-12-b R4, once and for all: no module but ``sci_ext/core/trust.py`` creates a directory or a file.

Every directory sci_ext creates or writes into goes through :func:`sci_ext.core.trust.ensure_private_dir`
(0700 whatever the umask, owner and ancestors checked), every file through the trust module's
``open_private`` / ``create_private_file`` / ``atomic_write`` (0600, no symlink followed).  This
test walks the syntax tree of every module and fails on any call that creates a directory or
opens a path for writing anywhere else, so a new code path cannot skip the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sci_ext

PACKAGE = Path(sci_ext.__file__).parent
TRUST = PACKAGE / "core" / "trust.py"

#: Calls that create a directory or a file whatever their arguments.
CREATING = {
    "mkdir",
    "makedirs",
    "mkstemp",
    "mkdtemp",
    "NamedTemporaryFile",
    "TemporaryDirectory",
    "TemporaryFile",
    "SpooledTemporaryFile",
    "write_text",
    "write_bytes",
    "touch",
    "mkfifo",
    "symlink_to",
    "hardlink_to",
    "symlink",
    "link",
    "copyfile",
    "copy",
    "copy2",
    "copytree",
}
#: ``os.open`` flags that create or write.
WRITE_FLAGS = {"O_CREAT", "O_WRONLY", "O_RDWR", "O_APPEND", "O_TRUNC"}

#: Reviewed exceptions: (module relative to the package, call name) -> why it is safe.
ALLOWED: dict[tuple[str, str], str] = {
    ("cli/argv_scrub.py", "open"): "opens /proc/self/mem to overwrite this process's own argv (R5)",
    ("core/resilience/store.py", "connect"): "the database file is made 0600 by trust.open_private in "
    "_Records.__init__, in a directory made by trust.ensure_private_dir, before SQLite opens it",
}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _qualifier(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id
    return ""


def _mode(call: ast.Call, position: int) -> str | None:
    """The literal mode argument of an ``open`` call (positional ``position`` or ``mode=``)."""
    node: ast.expr | None = call.args[position] if len(call.args) > position else None
    for kw in call.keywords:
        if kw.arg == "mode":
            node = kw.value
    if node is None:
        return "r"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None  # computed: treated as writing


def _writes(call: ast.Call) -> bool:
    name, qualifier = _name(call.func), _qualifier(call.func)
    if name in CREATING:
        # shutil.copy* / os.link: only the module-level functions (not e.g. dict.copy())
        if name in {"copy", "copy2", "copyfile", "copytree"}:
            return qualifier == "shutil"
        if name in {"link", "symlink"}:
            return qualifier == "os"
        return True
    if name == "open" and qualifier == "os":
        flags = {n.attr for arg in call.args[1:2] for n in ast.walk(arg) if isinstance(n, ast.Attribute)}
        flags |= {n.id for arg in call.args[1:2] for n in ast.walk(arg) if isinstance(n, ast.Name)}
        return bool(flags & WRITE_FLAGS) or not call.args[1:2]
    if name == "open" and (isinstance(call.func, ast.Name) or qualifier in ("io", "builtins")):
        mode = _mode(call, 1)
        return mode is None or any(c in mode for c in "wax+")
    if name == "open" and isinstance(call.func, ast.Attribute):  # Path.open(mode)
        # Path.open's first argument is the mode; an object's open(request, ...) (urllib's
        # opener, GenerationFile.open(path)) is not a file opened by mode: judged by mode= only.
        if call.args and not (isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
            if not any(kw.arg == "mode" for kw in call.keywords):
                return False
        mode = _mode(call, 0)
        return mode is None or any(c in mode for c in "wax+")
    if name == "connect" and qualifier == "sqlite3":  # creates the database file, unless read-only
        target = ast.unparse(call.args[0]) if call.args else ""
        return "mode=ro" not in target
    if name in {"FileLock", "SoftFileLock"}:  # creates the lock file: 0600 or the umask decides
        return not any(kw.arg == "mode" for kw in call.keywords)
    return False


def offenders() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == TRUST:
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _writes(node):
                if (rel, _name(node.func)) in ALLOWED:
                    continue
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node.func)}(...)")
    return found


def test_no_module_but_trust_creates_directories_or_files() -> None:
    bad = offenders()
    assert bad == [], "create directories and files through sci_ext.core.trust:\n" + "\n".join(bad)


def test_the_rule_catches_what_it_claims() -> None:
    """The walker flags each pattern it names (so an empty list above means something)."""
    samples = {
        "Path(p).mkdir(parents=True)": True,
        "os.makedirs(p)": True,
        "tempfile.mkstemp(dir=d)": True,
        "open(p, 'w')": True,
        "open(p, mode='ab')": True,
        "open(p, m)": True,
        "Path(p).open('w')": True,
        "p.write_text('x')": True,
        "os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)": True,
        "sqlite3.connect(str(p))": True,
        "sqlite3.connect(f'file:{p}?mode=ro', uri=True)": False,
        "FileLock(str(p), timeout=2)": True,
        "FileLock(str(p), timeout=2, mode=0o600)": False,
        "opener.open(request, timeout=3)": False,
        "shutil.copy2(a, b)": True,
        "open(p)": False,
        "open(p, 'rb')": False,
        "Path(p).open()": False,
        "os.open(p, os.O_RDONLY)": False,
        "d.copy()": False,
        "os.fdopen(fd, 'w')": False,
    }
    for source, expected in samples.items():
        call = ast.parse(source).body[0].value  # type: ignore[attr-defined]
        assert _writes(call) is expected, source


def test_trust_is_standard_library_only() -> None:
    tree = ast.parse(TRUST.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            imported.add("." * node.level + module if node.level else module.split(".")[0])
    import sys

    local = {m for m in imported if m.startswith(".")}
    assert local <= {".errors"}, f"trust.py imports sci_ext modules: {local}"
    assert {m for m in imported - local if m not in sys.stdlib_module_names} == set()
