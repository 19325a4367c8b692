"""sci_ext._lazy.lazy_exports: names load on first use, once; unknown names fail like a plain module's."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A throwaway package `lazypkg` using lazy_exports, with two submodules that record their import."""
    root = tmp_path / "lazypkg"
    root.mkdir()
    (root / "__init__.py").write_text(
        "from sci_ext._lazy import lazy_exports\n"
        "_EXPORTS = {'heavy_value': 'heavy', 'Other': 'other'}\n"
        "__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, ('plainmod',))\n"
    )
    (root / "heavy.py").write_text("import sys\nsys.modules['lazypkg'].imports.append('heavy')\nheavy_value = 42\n")
    (root / "other.py").write_text("class Other:\n    pass\n")
    (root / "plainmod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg = importlib.import_module("lazypkg")
    pkg.imports = []
    yield pkg
    for name in [n for n in sys.modules if n == "lazypkg" or n.startswith("lazypkg.")]:
        del sys.modules[name]


def test_a_name_loads_its_module_on_first_use_only(package):
    assert "lazypkg.heavy" not in sys.modules
    assert package.heavy_value == 42
    assert package.imports == ["heavy"] and "lazypkg.heavy" in sys.modules
    assert "heavy_value" in vars(package)  # stored: the next lookup does not call __getattr__
    from lazypkg import heavy_value

    assert heavy_value == 42 and package.imports == ["heavy"]
    assert "lazypkg.other" not in sys.modules  # the other export was not touched


def test_unknown_names_fail_as_for_a_plain_module(package):
    with pytest.raises(AttributeError, match=r"^module 'lazypkg' has no attribute 'nope'$"):
        package.nope
    with pytest.raises(ImportError, match="cannot import name 'nope'"):
        exec("from lazypkg import nope", {})
    assert not hasattr(package, "heavy")  # a submodule that is not listed is not an attribute


def test_listed_submodules_and_dir(package):
    from lazypkg import plainmod

    assert plainmod.X == 1
    names = dir(package)
    assert {"heavy_value", "Other", "lazy_exports"} <= set(names) and names == sorted(names)
    assert "lazypkg.heavy" not in sys.modules  # dir() imports nothing


@pytest.mark.parametrize("name", ["sci_ext.core", "sci_ext.core.security", "sci_ext.core.telemetry"])
def test_every_export_of_the_real_packages_resolves(name):
    """Each table entry names the module that really defines the name (a typo would surface here only)."""
    module = importlib.import_module(name)
    for export, submodule in module._EXPORTS.items():
        value = getattr(module, export)
        defining = importlib.import_module(f"{name}.{submodule}")
        assert value is getattr(defining, export), export
