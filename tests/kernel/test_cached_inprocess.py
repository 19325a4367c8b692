"""``%%cached`` and ``%sci_cache`` in an in-process IPython shell (fast; counted by coverage)."""

from __future__ import annotations

import builtins

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from sci_ext.core.cache.layered import get_memory_store
from sci_ext.kernel.cellcache.session import SESSION


@pytest.fixture
def ip():
    from IPython.testing.globalipapp import get_ipython as start_ipython

    shell = start_ipython()
    from IPython.core.interactiveshell import InteractiveShell

    if not InteractiveShell.initialized():
        # Another in-process module cleared the singleton; IPython.get_ipython() must find this shell.
        InteractiveShell._instance = shell
    from sci_ext.kernel import KernelState

    if not KernelState.get(shell).loaded:
        shell.run_line_magic("load_ext", "sci_ext")
    get_memory_store().clear()
    # `_` in builtins (set by Python's own displayhook, outside any shell) also stops it.
    builtin_under = builtins.__dict__.pop("_", None)
    for name in ("_", "__", "___"):
        # A name an earlier test bound (`for _ in ...`) stops IPython updating `_`: let it own them again.
        if shell.user_ns.get(name) is not getattr(shell.displayhook, name, None):
            shell.user_ns.pop(name, None)
    keep = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - keep:
        del shell.user_ns[name]
    if builtin_under is not None:
        builtins._ = builtin_under  # type: ignore[attr-defined]


def run(ip, code):
    result = ip.run_cell(code)
    if result.error_in_exec is not None:
        raise result.error_in_exec
    if result.error_before_exec is not None:
        raise result.error_before_exec
    return result


def test_hit_restores_and_replays(ip, capsys):
    ip.user_ns["k"] = 4
    cell = "%%cached sq\nprint('working')\nsq = k ** 2\nsq + 1"
    first = run(ip, cell)
    assert SESSION.last.status == "miss" and first.result == 17
    ip.user_ns.pop("sq")
    capsys.readouterr()
    second = run(ip, cell)
    out = capsys.readouterr().out
    assert SESSION.last.status == "hit" and ip.user_ns["sq"] == 16
    assert out.index("working") < out.index("restored from disk: sq")
    assert repr(second.result) == "17"


def test_quiet_force_and_notify(ip, capsys):
    cell = "%%cached --quiet\nq = 1"
    run(ip, cell)
    run(ip, cell)
    assert SESSION.last.status == "hit" and "restored" not in capsys.readouterr().out
    run(ip, "%%cached --force --quiet\nq = 1")
    assert SESSION.last.status == "miss"
    run(ip, "%sci_config cache.notify=false")
    run(ip, "%%cached\nq = 1")
    assert SESSION.last.status == "hit" and "restored" not in capsys.readouterr().out


def test_memory_backend_stays_in_the_kernel(ip, sci_env):
    cell = "%%cached --backend memory mem\nm = [1, 2]"
    run(ip, cell)
    run(ip, cell)
    assert SESSION.last.status == "hit" and SESSION.last.layer == "memory"
    assert not (sci_env["XDG_CACHE_HOME"] / "sci_ext" / "cells").exists()
    run(ip, "%sci_cache list --backend memory")
    run(ip, "%sci_cache stats --backend memory")


def test_inputs_outputs_and_ignore(ip, capsys):
    ip.user_ns.update(a=1, b=2)
    run(ip, "%%cached --inputs a --outputs r\nr = a + b\ntmp = 0")
    ip.user_ns["b"] = 100  # not in --inputs: not part of the key
    ip.user_ns.pop("tmp")
    run(ip, "%%cached --inputs a --outputs r\nr = a + b\ntmp = 0")
    assert SESSION.last.status == "hit" and ip.user_ns["r"] == 3 and "tmp" not in ip.user_ns
    import threading

    ip.user_ns["client"] = threading.Lock()
    run(ip, "%%cached\nuse = a if client else 0")
    err = capsys.readouterr().err
    assert SESSION.last.status == "uncached" and "--ignore client" in err and "cannot hash input 'client'" in err
    run(ip, "%%cached --ignore client\nuse = a if client else 0")
    run(ip, "%%cached --ignore client\nuse = a if client else 0")
    assert SESSION.last.status == "hit"
    run(ip, "%%cached --outputs nothere\nx9 = 1")
    assert "nothere" in capsys.readouterr().err


def test_functions_and_classes_defined_in_a_cached_cell_see_the_live_namespace(ip):
    cell = "%%cached defs\nclass Acc:\n    def total(self):\n        return BASE + 1\ndef twice(v):\n    return v * 2 * BASE"
    ip.user_ns["BASE"] = 10
    run(ip, cell)
    for name in ("Acc", "twice"):
        ip.user_ns.pop(name)
    run(ip, cell)
    assert SESSION.last.status == "hit"
    ip.user_ns["BASE"] = 10
    assert ip.user_ns["twice"](1) == 20 and ip.user_ns["Acc"]().total() == 11


def test_deleted_names_and_imports(ip):
    ip.user_ns["gone"] = 1
    run(ip, "%%cached\nimport json as js\ndel gone")
    ip.user_ns["gone"] = 1
    ip.user_ns.pop("js")
    run(ip, "%%cached\nimport json as js\ndel gone")
    import json

    assert SESSION.last.status == "hit" and ip.user_ns["js"] is json and "gone" not in ip.user_ns


def test_bad_options_are_usage_errors(ip):
    with pytest.raises(UsageError, match="not a variable name"):
        ip.run_cell_magic("cached", "--inputs 1x", "y = 1")
    with pytest.raises(UsageError, match="--ttl must be >= 0"):
        ip.run_cell_magic("cached", "--ttl -1", "y = 1")
    with pytest.raises(UsageError, match="NAME"):
        ip.run_cell_magic("cached", "bad/name", "y = 1")
    with pytest.raises(UsageError, match="redis_url"):
        ip.run_cell_magic("cached", "--backend redis", "y = 1")
    with pytest.raises(UsageError, match="needs a NAME"):
        ip.run_line_magic("sci_cache", "info")
    with pytest.raises(UsageError, match="no cache entry"):
        ip.run_line_magic("sci_cache", "clear nosuch")
    with pytest.raises(UsageError, match="or --all"):
        ip.run_line_magic("sci_cache", "clear")


def test_sci_cache_list_info_clear_stats(ip, capsys):
    run(ip, "%%cached alpha\nva = 1")
    run(ip, "%%cached beta\nvb = 2")
    run(ip, "%%cached alpha\nva = 1")
    capsys.readouterr()
    ip.run_line_magic("sci_cache", "list")
    listing = capsys.readouterr().out
    assert "alpha" in listing and "beta" in listing and "2 entries" in listing
    ip.run_line_magic("sci_cache", "info alpha")
    info = capsys.readouterr().out
    assert "name     alpha" in info and "hits     1" in info and "kind     cell" in info
    ip.run_line_magic("sci_cache", "stats")
    stats_text = capsys.readouterr().out
    assert "ratio" in stats_text and "0.33" in stats_text
    ip.run_line_magic("sci_cache", "clear alpha")
    assert "cleared 1 entry (alpha)" in capsys.readouterr().out
    ip.run_line_magic("sci_cache", "clear --all")
    assert "cleared 1 entries" in capsys.readouterr().out
    run(ip, "%%cached alpha\nva = 1")
    assert SESSION.last.status == "miss"


def test_a_cell_raising_keeps_its_bindings_as_a_plain_cell_does(ip):
    """Issue 25: a cached cell that raised rolled its bindings back; plain Python keeps them."""
    body = "keep = 'new'\ndef helper():\n    return 7\n1 / 0"
    states = []
    for prefix in ("", "%%cached\n"):
        ip.user_ns["keep"] = "old"
        ip.user_ns.pop("helper", None)
        result = ip.run_cell(prefix + body)
        assert isinstance(result.error_in_exec, ZeroDivisionError)
        states.append((ip.user_ns["keep"], ip.user_ns["helper"]() if "helper" in ip.user_ns else None))
    assert states[1] == states[0] == ("new", 7)
    assert SESSION.last.status == "miss"


@settings(max_examples=40, deadline=None)
@given(
    st.recursive(
        st.integers() | st.text(max_size=6) | st.floats(allow_nan=False),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
        max_leaves=8,
    ),
    st.integers(),
)
def test_property_random_input_changes_never_hit(value, other):
    from IPython.testing.globalipapp import get_ipython as start_ipython

    shell = start_ipython()
    from IPython.core.interactiveshell import InteractiveShell

    if not InteractiveShell.initialized():
        # Another in-process module cleared the singleton; IPython.get_ipython() must find this shell.
        InteractiveShell._instance = shell
    from sci_ext.kernel import KernelState

    if not KernelState.get(shell).loaded:
        shell.run_line_magic("load_ext", "sci_ext")
    get_memory_store().clear()  # examples repeat values; each starts from an empty cache
    cell = "%%cached --backend memory --quiet prop\nout = repr(inp)"
    shell.user_ns["inp"] = value
    assert shell.run_cell(cell).success
    shell.user_ns["inp"] = [value, other]  # a changed input
    shell.run_cell(cell)
    assert SESSION.last.status == "miss"
    assert shell.user_ns["out"] == repr([value, other])
    shell.user_ns["inp"] = value
    shell.run_cell(cell)
    assert SESSION.last.status == "hit" and shell.user_ns["out"] == repr(value)


def test_outputs_of_every_kind_are_replayed_in_order(ip, capsys):
    cell = (
        "%%cached kinds\n"
        "import sys\n"
        "from IPython.display import display, clear_output, Markdown\n"
        "print('one')\n"
        "print('two', file=sys.stderr)\n"
        "display(Markdown('**three**'))\n"
        "clear_output()\n"
        "sys.stdout.writelines(['four\\n'])\n"
        "k = 1"
    )
    run(ip, cell)
    capsys.readouterr()
    run(ip, cell)
    assert SESSION.last.status == "hit"
    captured = capsys.readouterr()
    assert captured.out.index("one") < captured.out.index("Markdown object") < captured.out.index("four")
    assert "two" in captured.err


def test_unpicklable_value_corrupt_entry_and_absent_input(ip, capsys, sci_env):
    run(ip, "%%cached\nimport threading\nheld = threading.Lock()")
    assert SESSION.last.status == "uncached" and "'held'" in capsys.readouterr().err
    cell = "%%cached corrupt\nv = later if 'later' in dir() else 0"
    run(ip, cell)
    cells = sci_env["XDG_CACHE_HOME"] / "sci_ext" / "cells"
    (entry,) = cells.rglob("*.val")
    entry.write_bytes(b"SCICACH1" + b"garbage" * 10)  # written by "another version"
    run(ip, cell)
    assert SESSION.last.status == "miss" and "unreadable" in capsys.readouterr().err
    ip.user_ns["later"] = 5  # an input that was absent appears: a miss
    run(ip, cell)
    assert SESSION.last.status == "miss" and ip.user_ns["v"] == 5


def test_a_cell_waits_for_another_process_computing_the_same_key(ip, capsys, sci_env):
    import threading

    from filelock import FileLock

    from sci_ext.core.cache.admin import open_store
    from sci_ext.kernel.cellcache.plan import CellOptions, make_plan

    cell = "%%cached waited\nw = 1"
    key = make_plan(ip, cell.split("\n", 1)[1], CellOptions(name="waited")).key
    store = open_store()
    (store.local.directory / ".locks").mkdir(exist_ok=True)
    held = threading.Event()

    def other_process():
        lock = FileLock(str(store.local.directory / ".locks" / f"{key}.lock"))
        with lock:
            held.set()
            threading.Event().wait(0.3)

    worker = threading.Thread(target=other_process)
    worker.start()
    held.wait(5)
    run(ip, cell)
    worker.join()
    assert "another kernel is computing this cell" in capsys.readouterr().err
    assert SESSION.last.status == "miss" and ip.user_ns["w"] == 1


def test_class_with_static_and_class_methods_restores(ip):
    cell = (
        "%%cached meths\n"
        "class Tool:\n"
        "    @staticmethod\n"
        "    def s():\n"
        "        return FACTOR\n"
        "    @classmethod\n"
        "    def c(cls):\n"
        "        return FACTOR + 1"
    )
    ip.user_ns["FACTOR"] = 3
    run(ip, cell)
    ip.user_ns.pop("Tool")
    run(ip, cell)
    assert SESSION.last.status == "hit"
    assert ip.user_ns["Tool"].s() == 3 and ip.user_ns["Tool"].c() == 4


def test_entry_that_cannot_be_restored_here_is_a_miss(ip, capsys):
    import sys
    import types

    fake = types.ModuleType("sci_ext_fake_mod")
    sys.modules["sci_ext_fake_mod"] = fake
    cell = "%%cached fake\nimport sci_ext_fake_mod as fm\nz = 1"
    run(ip, cell)
    del sys.modules["sci_ext_fake_mod"]  # "not installed in this kernel"
    ip.user_ns.pop("fm")
    sys.modules["sci_ext_fake_mod"] = fake
    run(ip, cell)
    assert SESSION.last.status == "hit"
    del sys.modules["sci_ext_fake_mod"]
    from sci_ext.core.cache.keys import module_version

    module_version.cache_clear()
    ip.user_ns.pop("fm")
    result = ip.run_cell(cell)
    # The key itself is the same (same version string), so the entry is found but cannot
    # be restored: a warning, then the cell runs (and fails like any cell importing it).
    assert "cannot be restored here" in capsys.readouterr().err
    assert isinstance(result.error_in_exec, ModuleNotFoundError)


def test_code_inside_a_line_magic_is_keyed_too(ip):
    cell = "%%cached --quiet\n%time doubled = base * 2"
    ip.user_ns["base"] = 2
    run(ip, cell)
    run(ip, cell)
    assert SESSION.last.status == "hit"
    ip.user_ns["base"] = 3
    run(ip, cell)
    assert SESSION.last.status == "miss" and ip.user_ns["doubled"] == 6


def test_secret_values_never_reach_the_cache(ip, capsys, sci_env):
    from sci_ext.core.security.redact import get_redactor

    secret = "sk-test-0123456789abcdef"
    redactor = get_redactor()
    redactor.add("OPENAI_API_KEY", secret)
    try:
        ip.user_ns["key_source"] = {"k": secret}
        run(ip, "%%cached\napi_key = key_source['k']")
        assert SESSION.last.status == "uncached" and "'api_key'" in capsys.readouterr().err
        run(ip, "%%cached shown\nprint('using', key_source['k'][:0] + 'sk-test-0123456789abcdef')\nn = 1")
        assert SESSION.last.status == "miss"
        cells = sci_env["XDG_CACHE_HOME"] / "sci_ext" / "cells"
        stored = b"".join(p.read_bytes() for p in cells.rglob("*.val"))
        assert b"REDACTED:OPENAI_API_KEY" in stored and secret.encode() not in stored
    finally:
        redactor.remove("OPENAI_API_KEY")


def test_environment_variables_read_by_the_cell_are_keyed(ip, monkeypatch):
    monkeypatch.setenv("SCI_EXT_TEST_MODEL", "small")
    cell = "%%cached --quiet\nimport os\nmodel = os.environ.get('SCI_EXT_TEST_MODEL')"
    run(ip, cell)
    run(ip, cell)
    assert SESSION.last.status == "hit"
    monkeypatch.setenv("SCI_EXT_TEST_MODEL", "large")
    run(ip, cell)
    assert SESSION.last.status == "miss" and ip.user_ns["model"] == "large"
