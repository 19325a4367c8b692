"""Module versions for cache keys come from where the module is, never from a scan of the environment."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import stat
import sys
from pathlib import Path

import pytest

from sci_ext.core.cache import keys, versions


@pytest.fixture
def fresh(tmp_path, sci_env):
    """No remembered versions; the on-disk index under this test's own state dir."""
    keys.module_version.cache_clear()
    versions._MEMORY.clear()
    yield tmp_path
    keys.module_version.cache_clear()
    versions._MEMORY.clear()


def _dist(site: Path, name: str, version: str, module: str, top_level: bool = True) -> Path:
    meta = site / f"{name}-{version}.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    if top_level:
        (meta / "top_level.txt").write_text(module + "\n")
    (meta / "RECORD").write_text(f"{module}/__init__.py,,\n{meta.name}/METADATA,,\n")
    pkg = site / module
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    return meta


def test_no_environment_scan(fresh, monkeypatch):
    def scan():
        raise AssertionError("packages_distributions() scans every installed distribution")

    monkeypatch.setattr(importlib.metadata, "packages_distributions", scan)
    site = fresh / "site"
    _dist(site, "Scan_Free", "1.5", "scanfreemod")
    monkeypatch.syspath_prepend(str(site))
    assert "scanfreemod" not in sys.modules
    assert keys.module_version("scanfreemod.sub") == "1.5"
    assert keys.module_version("numpy.linalg") == importlib.metadata.version("numpy")
    assert keys.module_version("yaml") == importlib.metadata.version("PyYAML")  # name differs from module
    assert keys.module_version("json.decoder") == "stdlib-" + ".".join(map(str, sys.version_info[:2]))


def test_same_versions_as_the_full_scan(fresh):
    mapping = importlib.metadata.packages_distributions()
    checked = 0
    for top, dists in sorted(mapping.items()):
        if top in sys.stdlib_module_names or versions.site_dir_of(top) is None:
            continue  # a name in top_level.txt that no longer exists as a module
        if len(set(dists)) > 1:
            continue  # a namespace package (sphinxcontrib.*): several distributions, no one version
        if top.startswith("_") or importlib.util.find_spec(top) is None:
            continue  # top_level.txt names a module that is not top-level (pycares lists _cares)
        assert versions.find_version(top) == importlib.metadata.version(dists[0]), top
        checked += 1
    assert checked > 50


def test_index_is_private_and_follows_installs(fresh, monkeypatch, sci_env):
    site = fresh / "site"
    _dist(site, "Other_Dist", "1.0", "renamedmod")
    monkeypatch.syspath_prepend(str(site))
    assert versions.find_version("renamedmod") == "1.0"
    index_dir = sci_env["XDG_STATE_HOME"] / "sci_ext" / "distributions"
    files = list(index_dir.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(index_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(files[0].stat().st_mode) & 0o077 == 0
    # Upgrade: the dist-info directory is replaced, the site directory's mtime changes.
    (site / "Other_Dist-1.0.dist-info").rename(site / "Other_Dist-2.0.dist-info")
    meta = site / "Other_Dist-2.0.dist-info" / "METADATA"
    meta.write_text(meta.read_text().replace("1.0", "2.0"))
    os.utime(site, ns=(site.stat().st_atime_ns, site.stat().st_mtime_ns + 10**9))
    versions._MEMORY.clear()
    assert versions.find_version("renamedmod") == "2.0"


def test_index_read_from_disk_after_restart(fresh, monkeypatch):
    site = fresh / "site"
    _dist(site, "Another", "3.1", "othermod", top_level=False)  # RECORD only
    monkeypatch.syspath_prepend(str(site))
    assert versions.find_version("othermod") == "3.1"
    versions._MEMORY.clear()  # a new kernel: only the disk index is left
    monkeypatch.setattr(versions, "_top_levels", lambda meta: pytest.fail("index rebuilt, not read"))
    assert versions.find_version("othermod") == "3.1"


def test_local_module_is_unversioned(fresh, monkeypatch):
    (fresh / "helpers_9a.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(fresh))
    assert versions.find_version("helpers_9a") == ""
    assert versions.find_version("no_such_module_9a") == ""
