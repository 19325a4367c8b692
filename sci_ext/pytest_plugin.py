"""``pytest --nbval --sci-cache``: validate notebooks with nbval, reusing the cell cache.

Registered by entry point (``pytest11``) when sci_ext is installed; it does nothing
unless ``--sci-cache`` is given.  Then every notebook runs in a kernel of this Python
with sci_ext loaded in auto mode (every code cell as if it had ``%%cached``, see
:mod:`sci_ext.core.autorun`) against ``--sci-cache-dir`` (default
``.sci_ext_cache`` in pytest's root directory).  A second run restores the cells whose
code, inputs and files did not change, and nbval compares the restored outputs with the
stored ones exactly as it compares fresh ones; a cell that raises is never stored.
Notices go to a side report instead of the cells' outputs, so outputs are what a plain
run prints; the terminal summary says, per notebook, how many cells ran, how many were
restored, why each ran, and why each cell left plain was not cacheable.

The notebook's own kernelspec is replaced by the current environment's Python (as
``--nbval-current-env`` does), since the cache and sci_ext live there.

Importing this module imports nothing beyond the standard library and pytest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

__all__ = ["pytest_addoption", "pytest_configure"]

_KEY = "sci_cache"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--sci-cache`` and ``--sci-cache-dir``."""
    group = parser.getgroup("sci_ext", "sci_ext cell cache for nbval")
    group.addoption(
        "--sci-cache",
        action="store_true",
        help="with --nbval/--nbval-lax: cache every notebook cell (sci_ext auto mode); rerun only what changed",
    )
    group.addoption(
        "--sci-cache-dir",
        metavar="DIR",
        default=None,
        help="cell cache directory for --sci-cache (default: .sci_ext_cache in the rootdir)",
    )


class _SciCache:
    """The plugin's state for one pytest process (each xdist worker has its own)."""

    def __init__(self, config: pytest.Config) -> None:
        from .core.autorun import make_kernelspec

        self.config = config
        from .core import trust

        self.workdir = trust.private_temp_dir("sci_ext-nbval-")
        self.cache_dir: Path | None = self._cache_dir()
        self.kernel = make_kernelspec(self.workdir, self.cache_dir)
        self.kernel.activate()
        self.offset = 0

    def _cache_dir(self) -> Path | None:
        from .core import trust

        option = self.config.getoption("sci_cache_dir")
        path = Path(option).expanduser() if option else self.config.rootpath / ".sci_ext_cache"
        try:
            return trust.ensure_private_dir(path.resolve(), what="--sci-cache-dir")
        except (OSError, trust.UntrustedPathError) as exc:
            # The verdict must stay right: every cell runs, and the user is told once.
            sys.stderr.write(f"sci_ext: warning: --sci-cache-dir unusable, every cell runs: {exc}\n")
            return None

    def collect(self) -> list[dict[str, Any]]:
        """The kernel's records written since the last call (the cell that just ran)."""
        records, self.offset = self.kernel.read(self.offset)
        return records


def pytest_configure(config: pytest.Config) -> None:
    """Check the options; set up the kernelspec when ``--sci-cache`` is given."""
    if not config.getoption("sci_cache", default=False):
        return
    nbval = config.getoption("nbval", default=False) or config.getoption("nbval_lax", default=False)
    if not nbval:
        raise pytest.UsageError("--sci-cache caches notebook cells run by nbval: add --nbval or --nbval-lax")
    if config.getoption("nbval_kernel_name", default=None):
        raise pytest.UsageError(
            "--sci-cache runs notebooks in this environment's Python (where the cache lives): drop --nbval-kernel-name"
        )
    state = _SciCache(config)
    config.option.nbval_current_env = False
    config.option.current_env = False
    config.option.nbval_kernel_name = state.kernel.name
    config.stash[_STASH] = state
    config.pluginmanager.register(_Records(), "sci_ext-records")


_STASH = pytest.StashKey[_SciCache]()


def _shown_path(path: Path, root: Path) -> str:
    """``path`` relative to pytest's rootdir when it is below it (a notebook may be anywhere)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _is_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the kernel's records for this cell to its report (they travel to the xdist controller)."""
    outcome = yield
    state = item.config.stash.get(_STASH, None)
    if state is None or call.when != "call" or not _is_cell(item):
        return
    report = outcome.get_result()
    for record in state.collect():
        record["notebook"] = _shown_path(Path(str(item.fspath)), item.config.rootpath)
        record["nbval_cell"] = getattr(item, "cell_num", None)
        report.user_properties.append((_KEY, json.dumps(record)))


class _Records:
    """The records of one pytest session, per notebook (kept by the controller too, under xdist).

    An object registered by :func:`pytest_configure`, not a module global: a process that runs
    pytest twice (``pytest.main``, an IDE, pytester) reports each session's notebooks only.
    """

    def __init__(self) -> None:
        self.by_notebook: dict[str, list[dict[str, Any]]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Gather the records (in the controller too, under xdist)."""
        for name, value in getattr(report, "user_properties", []):
            if name != _KEY:
                continue
            record = json.loads(value)
            self.by_notebook.setdefault(record["notebook"], []).append(record)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The per-notebook report."""
        if not self.by_notebook:
            return
        terminalreporter.write_sep("-", "sci_ext cell cache")
        for line in summary_lines(self.by_notebook):
            terminalreporter.write_line(line)


def summary_lines(records: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per notebook: cells restored and run, and why each ran."""
    lines = []
    for notebook, cells in records.items():
        counts: dict[str, int] = {}
        for cell in cells:
            counts[cell["status"]] = counts.get(cell["status"], 0) + 1
        parts = [f"{counts.get('restored', 0)} restored", f"{counts.get('ran', 0) + counts.get('failed', 0)} ran"]
        if counts.get("skipped") or counts.get("plain"):
            parts.append(f"{counts.get('skipped', 0) + counts.get('plain', 0)} left plain")
        lines.append(f"{notebook}: {', '.join(parts)}")
        for cell in cells:
            where = f"cell {cell['nbval_cell']}" if cell.get("nbval_cell") is not None else f"#{cell['seq']}"
            if cell["status"] in ("ran", "failed"):
                lines.append(f"  {where} ran: {cell.get('reason') or 'no stored entry'}  [{cell['first_line']}]")
            elif cell["status"] in ("skipped", "plain"):
                # Not cacheable by design (a magic, a shell command, only imports): say so, once per cell.
                lines.append(f"  {where} left plain: {cell.get('reason') or 'not cached'}  [{cell['first_line']}]")
    return lines


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the temporary kernelspec directory."""
    import shutil

    state = config.stash.get(_STASH, None)
    if state is not None:
        shutil.rmtree(state.workdir, ignore_errors=True)
