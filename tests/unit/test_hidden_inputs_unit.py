"""Unit checks of the hidden-input scan, the cell source helper and the version index edge cases."""

from __future__ import annotations

import os
import random
import sys
import types

import numpy as np

from sci_ext.core.cache import keys, versions
from sci_ext.kernel.cellcache.hidden import attribute_value, find_hidden, rng_state, set_rng_state
from sci_ext.kernel.cellcache.source import cell_number, header_of

MAIN = {"__main__"}


def scan(code, ns=None, bound=(), inputs=()):
    return find_hidden(code, ns or {}, set(bound), list(inputs), MAIN)


def test_generator_forms():
    assert scan("import numpy.random as npr\nx = npr.rand()").rng == {"numpy"}
    assert scan("from numpy import random as r\nx = r.normal()").rng == {"numpy"}
    assert scan("from numpy.random import rand\nx = rand()").rng == {"numpy"}
    assert scan("from numpy.random import default_rng\nx = default_rng(0).random()").rng == set()
    assert scan("import random as rnd\nr = rnd.Random(1).random()").rng == set()
    assert scan("x = rand()", ns={"rand": np.random.rand}, inputs=["rand"]).rng == {"numpy"}
    assert scan("x = pick([1])", ns={"pick": random.choice}, inputs=["pick"]).rng == {"random"}
    assert scan("import random\nrandom.seed(1)\nx = random.random()").rng == set()


def test_helper_class_drawing_from_numpy():
    ns: dict = {"np": np}
    exec("class Sampler:\n    def draw(self):\n        return np.random.rand()\n", ns)  # noqa: S102
    ns["Sampler"].__module__ = "__main__"
    for func in vars(ns["Sampler"]).values():
        if isinstance(func, types.FunctionType):
            func.__module__ = "__main__"
    assert scan("x = Sampler().draw()", ns=ns, inputs=["Sampler"]).rng == {"numpy"}


def _helper(source: str, name: str) -> dict:
    ns: dict = {"np": np, "random": random}
    exec(source, ns)  # noqa: S102
    ns[name].__module__ = "__main__"
    return ns


def test_helpers_with_their_own_generator_do_not_read_the_global_one():
    """Issue 25 (lead's L1): a helper calling np.random.default_rng(seed) keyed the global state, so every
    cell using it missed after each restart; the bytecode says which generator it uses."""
    own = _helper("def make(seed):\n    rng = np.random.default_rng(seed)\n    return rng.normal(size=3)", "make")
    assert scan("x = make(0)", ns=own, inputs=["make"]).rng == set()
    mine = _helper("def make(seed):\n    return random.Random(seed).random()", "make")
    assert scan("x = make(0)", ns=mine, inputs=["make"]).rng == set()
    drawing = _helper("def make():\n    return np.random.normal(size=3)", "make")
    assert scan("x = make()", ns=drawing, inputs=["make"]).rng == {"numpy"}
    nested = _helper("def make():\n    return [random.random() for _ in range(2)]", "make")
    assert scan("x = make()", ns=nested, inputs=["make"]).rng == {"random"}


def test_dynamic_lookups():
    assert scan("y = globals().get('a')").names == {"a"}
    assert scan("y = globals()['a'] + eval('b * 2')").names == {"a", "b"}
    assert scan("def f():\n    return locals()\ny = vars(obj)").unknowable == []
    assert scan("def f():\n    return globals()").unknowable  # module globals, even inside a function
    assert scan("y = eval('1 +')").unknowable == []  # a syntax error fails when it runs, as uncached
    found = scan("exec('import random\\nz = random.random()')")
    assert found.rng == {"random"}
    assert scan("y = eval(s)", ns={"eval": lambda s: s}, inputs=["eval", "s"]).unknowable == []


def test_attribute_values():
    mod = types.ModuleType("cfg")
    mod.flag = True
    mod.items = list(range(100))
    mod.small = {"a": 1}
    ns = {"cfg": mod, "os": os, "sys": sys}
    assert attribute_value(ns, "cfg", "flag") == ("value", True)
    assert attribute_value(ns, "cfg", "small") == ("value", {"a": 1})
    assert attribute_value(ns, "cfg", "items") == ("type", "builtins.list")
    assert attribute_value(ns, "cfg", "missing") == ("type", "<absent>")
    assert attribute_value(ns, "os", "environ") == ("type", "<skipped>")
    assert attribute_value(ns, "sys", "modules") == ("type", "<skipped>")
    found = scan("x = cfg.flag and os.sep", ns=ns, inputs=["cfg", "os"])
    assert found.attributes == {("cfg", "flag"), ("os", "sep")}


def test_rng_state_round_trip():
    random.seed(11)
    np.random.seed(11)
    state = rng_state({"random", "numpy"})
    expected = (random.random(), float(np.random.rand()))
    set_rng_state(state)
    assert (random.random(), float(np.random.rand())) == expected


def test_cell_source_outside_a_running_cell():
    shell = types.SimpleNamespace(displayhook=None, execution_count=7)
    assert cell_number(shell) == 7
    assert header_of(shell, "x = 1") == ""
    info = types.SimpleNamespace(raw_cell="%%cached a\nother body\n")
    shell.displayhook = types.SimpleNamespace(exec_result=types.SimpleNamespace(execution_count=3, info=info))
    assert cell_number(shell) == 3
    assert header_of(shell, "x = 1") == ""  # not this cell's body (a nested run_cell_magic)
    assert header_of(shell, "other body") == "%%cached a\n"


def test_version_index_ignores_garbage_and_reads_egg_info(tmp_path, monkeypatch, sci_env):
    keys.module_version.cache_clear()
    versions._MEMORY.clear()
    site = tmp_path / "site"
    (site / "eggmod").mkdir(parents=True)
    (site / "eggmod" / "__init__.py").write_text("")
    egg = site / "Egg_Dist-0.3-py3.11.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: Egg-Dist\nVersion: 0.3\n\n")
    (egg / "top_level.txt").write_text("eggmod\n")
    monkeypatch.syspath_prepend(str(site))
    index = versions._index_file(site)
    index.parent.mkdir(parents=True, mode=0o700)
    index.write_text("{not json")
    assert versions.find_version("eggmod") == "0.3"
    versions._MEMORY.clear()
    assert versions.find_version("eggmod") == "0.3"  # the rewritten index
    assert versions.find_version("os") == "stdlib-" + ".".join(map(str, sys.version_info[:2]))
    keys.module_version.cache_clear()
    versions._MEMORY.clear()
