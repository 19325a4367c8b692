"""Magics registered by name at %load_ext and loaded at first use (sci_ext.kernel.lazy), in-process IPython."""

from __future__ import annotations

import importlib

import pytest
from inprocess_shell import freshly_loaded_shell
from IPython.core import oinspect

from sci_ext.kernel import KernelState
from sci_ext.kernel.lazy import LAZY_MAGICS, LazyMagic


@pytest.fixture
def ip():
    shell = freshly_loaded_shell()
    yield shell
    if not KernelState.get(shell).loaded:
        shell.run_line_magic("load_ext", "sci_ext")


def _table(shell):
    return shell.magics_manager.magics


def test_every_name_is_a_stand_in_after_load(ip):
    for module, magics in LAZY_MAGICS.items():
        for kind, name in magics:
            stub = _table(ip)[kind][name]
            assert isinstance(stub, LazyMagic) and stub.module == module, (kind, name, stub)


@pytest.mark.parametrize("module", sorted(LAZY_MAGICS))
def test_the_table_names_exactly_what_each_module_registers(ip, module, monkeypatch):
    registered: set[tuple[str, str]] = set()
    real = ip.register_magics

    def spy(*objs):
        for obj in objs:
            registered.update((kind, name) for kind, names in obj.magics.items() for name in names)
        return real(*objs)

    monkeypatch.setattr(ip, "register_magics", spy)
    importlib.import_module(module).register(ip, KernelState.get(ip))
    assert registered == set(LAZY_MAGICS[module])
    for kind, name in registered:
        assert not isinstance(_table(ip)[kind][name], LazyMagic)


def test_first_call_loads_the_real_magic_and_later_calls_reach_it_directly(ip, capsys):
    assert isinstance(_table(ip)["line"]["sci_config"], LazyMagic)
    ip.run_line_magic("sci_config", "rag.top_k")
    assert "rag.top_k" in capsys.readouterr().out
    real = _table(ip)["line"]["sci_config"]
    assert not isinstance(real, LazyMagic) and real.__name__ == "sci_config"
    ip.run_line_magic("sci_config", "rag.top_k")
    assert _table(ip)["line"]["sci_config"] is real


def test_a_cell_magic_stand_in_runs_the_cell(ip):
    assert isinstance(_table(ip)["cell"]["guarded"], LazyMagic)
    result = ip.run_cell("%%guarded --retries 1\nlazy_x = 40 + 2")
    assert result.success and ip.user_ns.pop("lazy_x") == 42


def test_help_shows_the_real_docstring_before_first_use(ip):
    stub = _table(ip)["line"]["sci_llm"]
    assert isinstance(stub, LazyMagic)
    doc = oinspect.getdoc(stub)  # what `%sci_llm?` shows
    assert doc is not None and "LLM calls of this kernel" in doc and "--since" in doc
    info = ip.inspector.info(_table(ip)["cell"]["cached"], "cached")
    assert "Cache a cell" in info["docstring"] and "--ttl" in info["docstring"]


def test_unload_removes_stand_ins_and_loaded_magics(ip):
    ip.run_line_magic("sci_config", "rag.top_k")  # one real, the others stand-ins
    ip.run_line_magic("unload_ext", "sci_ext")
    names = {name for magics in LAZY_MAGICS.values() for _, name in magics}
    left = {name for table in _table(ip).values() for name in table} & names
    assert left == set()


def test_the_sdk_list_is_the_instrumented_one():
    from sci_ext.core.llm.patch import PROVIDERS
    from sci_ext.kernel.llm_cells import SDKS

    assert set(SDKS) == set(PROVIDERS)


def test_stand_ins_expand_variables_as_their_magics_do(ip):
    """A stand-in opts out of IPython's $var expansion exactly when its real magic does."""
    from IPython.core.magic import MAGIC_NO_VAR_EXPAND_ATTR

    for module, magics in LAZY_MAGICS.items():
        stubs = {(kind, name): _table(ip)[kind][name] for kind, name in magics}
        importlib.import_module(module).register(ip, KernelState.get(ip))
        for (kind, name), stub in stubs.items():
            real = _table(ip)[kind][name]
            assert getattr(stub, MAGIC_NO_VAR_EXPAND_ATTR, False) == getattr(real, MAGIC_NO_VAR_EXPAND_ATTR, False), (
                name
            )
