"""``pytest --nbval --sci-cache`` gives the verdict of ``pytest --nbval``, and ``jupyter sci run``.

The oracle is nbval without the cache: for a research-like notebook and each kind of
upstream edit (a constant, a data file, a helper function, a seed), every cell's
pass/fail under ``--sci-cache`` (with a cache filled by the unedited notebook) equals
its pass/fail in a full run of the edited notebook; and the cells that do not depend on
the edit are restored, not run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

CELLS = [
    "%load_ext sci_ext",
    "import numpy as np\nimport pandas as pd",
    "N = 30\nSEED = 0",
    "def scale(values):\n    return values * 2",
    "frame = pd.read_csv('data.csv')\nprint(frame['v'].sum())",
    "rng = np.random.default_rng(SEED)\nnoise = rng.normal(size=N)\nprint(round(float(noise.sum()), 6))",
    "scaled = scale(frame['v'].to_numpy())\nprint(scaled.tolist())",
    "grid = np.linspace(0, 1, N)\nprint(len(grid), round(float(grid.mean()), 6))",
    "report = {'rows': len(frame), 'n': N}\nreport",
    "print('static cell', 1 + 1)",
]

EDITS = {
    "constant": lambda d: _edit_cell(d, 2, "N = 30", "N = 40"),
    "data file": lambda d: (d / "data.csv").write_text("v\n5\n6\n7\n"),
    "helper function": lambda d: _edit_cell(d, 3, "values * 2", "values * 3"),
    "seed": lambda d: _edit_cell(d, 2, "SEED = 0", "SEED = 1"),
}
#: Cells (nbval's 0-based code-cell numbers) each edit changes the output of.
AFFECTED = {"constant": {5, 7, 8}, "data file": {4, 6}, "helper function": {6}, "seed": {5}}


def _edit_cell(directory: Path, index: int, old: str, new: str) -> None:
    path = directory / "research.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert old in nb.cells[index].source
    nb.cells[index].source = nb.cells[index].source.replace(old, new)
    nbformat.write(nb, path)


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCI_EXT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        env[var] = str(tmp / "xdg" / var.lower())
    return env


def _plugin_args() -> list[str]:
    # Installed, the entry point registers the plugin; from a checkout not yet reinstalled, name it.
    registered = any(ep.value == "sci_ext.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if registered else ["-p", "sci_ext.pytest_plugin"]


def execute_plainly(nb: nbformat.NotebookNode, directory: Path, env: dict[str, str]) -> None:
    """Run ``nb`` in place as a plain run does (its stored outputs are what nbval compares)."""
    from nbclient import NotebookClient

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(directory)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def make_notebook(directory: Path, env: dict[str, str]) -> None:
    """The notebook with the outputs of a plain run stored, and its data file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data.csv").write_text("v\n1\n2\n3\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    execute_plainly(nb, directory, env)
    nbformat.write(nb, directory / "research.ipynb")


@contextlib.contextmanager
def as_a_new_process(env: dict[str, str], cwd: Path) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Run a command in this process as it would run in a new one: ``env`` as the whole
    environment and ``cwd`` as the working directory (both restored after), stdout and stderr
    captured (yielded)."""
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield out, err
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def run_pytest(args: list[str], cwd: Path, env: dict[str, str], *, new_process: bool = False) -> tuple[int, str]:
    """One nested ``pytest`` run: its exit status and its output.

    By default in this process, as pytester's ``runpytest_inprocess`` runs one: ``pytest.main``
    makes a new configuration, plugin manager (the plugin loaded by its entry point, as in a
    new process) and session, in :func:`as_a_new_process`; the kernels nbval starts are new
    processes either way. The plugin keeps no state in its module, so nothing carries from one
    run to the next. What this saves is a new Python importing pytest, nbval and nbformat (with
    jsonschema): about 2 s of CPU per run. ``new_process``: a separate ``python -m pytest``.
    """
    if new_process:
        res = subprocess.run(
            [sys.executable, "-m", "pytest", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )
        return res.returncode, res.stdout + res.stderr
    with as_a_new_process(env, cwd) as (out, err):
        status = pytest.main(args)
    return int(status), out.getvalue() + err.getvalue()


def verdicts(junit: Path) -> dict[str, dict[int, bool]]:
    """``{first part of the test's class name: {cell number: passed}}`` from a run's JUnit XML
    (``edit_seed`` for ``edit_seed/research.ipynb`` below the rootdir)."""
    found: dict[str, dict[int, bool]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("classname", "").split(".", 1)[0]
        number = int(case.get("name", "").rsplit(" ", 1)[-1])
        found.setdefault(name, {})[number] = case.find("failure") is None and case.find("error") is None
    return found


def nbval(directory: Path, env: dict[str, str], *extra: str, new_process: bool = False) -> tuple[dict[int, bool], str]:
    """``{cell number: passed}`` and the output of one pytest --nbval run (see :func:`run_pytest`)."""
    junit = directory / "junit.xml"
    args = ["-p", "no:cacheprovider", "--nbval", "-q", f"--junitxml={junit}"]
    _, output = run_pytest([*args, *extra, "research.ipynb"], directory, env, new_process=new_process)
    (outcomes,) = verdicts(junit).values() or [{}]  # one notebook, whatever the rootdir makes its name
    return outcomes, output


def cached(
    directory: Path, env: dict[str, str], cache: Path, *extra: str, new_process: bool = False
) -> tuple[dict[int, bool], str]:
    return nbval(
        directory, env, *_plugin_args(), "--sci-cache", f"--sci-cache-dir={cache}", *extra, new_process=new_process
    )


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """The original notebook and a cache filled by one --sci-cache run of it."""
    base = tmp_path_factory.mktemp("nbval")
    env = _env(base)
    make_notebook(base / "original", env)
    cache = base / "cache"
    # In a new process, as a user runs it: the plugin found by its entry point, nothing imported before.
    first, out = cached(base / "original", env, cache, new_process=True)
    assert all(first.values()) and len(first) == len(CELLS), out
    assert f"0 restored, {len(CELLS) - 2} ran" in out, out  # %load_ext and the imports are left plain
    return base, cache, env


def test_a_second_run_restores_every_cell(warm: tuple[Path, Path, dict[str, str]]) -> None:
    base, cache, env = warm
    second, out = cached(base / "original", env, cache)
    assert all(second.values()), out
    assert f"{len(CELLS) - 2} restored, 0 ran" in out, out


def nbval_many(
    base: Path, names: list[str], env: dict[str, str], *extra: str
) -> tuple[dict[str, dict[int, bool]], str]:
    """One pytest --nbval run over ``base/<name>/research.ipynb`` for each name: verdicts per name."""
    junit = base / "junit-many.xml"
    args = ["-p", "no:cacheprovider", "--nbval", "-q", f"--junitxml={junit}"]
    paths = [f"{name}/research.ipynb" for name in names]
    _, output = run_pytest([*args, *extra, *paths], base, env)
    found = verdicts(junit)
    return {name: found.get(name, {}) for name in names}, output


def test_after_each_kind_of_edit_the_verdict_is_a_full_runs(warm: tuple[Path, Path, dict[str, str]]) -> None:
    base, warm_cache, env = warm
    names = {edit: "edit_" + edit.replace(" ", "_") for edit in EDITS}
    for edit, name in names.items():
        shutil.rmtree(base / name, ignore_errors=True)  # a rerun starts over
        shutil.copytree(base / "original", base / name)  # copy2: the data file keeps its mtime
        EDITS[edit](base / name)
    # One cache for the four edited notebooks, a copy of the one the unedited notebook filled:
    # the edits change different inputs, so no edited notebook can hit another's entries.
    cache = base / "cache-edits"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.copytree(warm_cache, cache)
    full, _ = nbval_many(base, sorted(names.values()), env)
    fast, out = nbval_many(
        base, sorted(names.values()), env, *_plugin_args(), "--sci-cache", f"--sci-cache-dir={cache}"
    )
    for edit, name in names.items():
        assert fast[name] == full[name], (
            f"verdicts differ for edit {edit!r}:\nfull {full[name]}\nfast {fast[name]}\n{out}"
        )
        assert {n for n, ok in full[name].items() if not ok} == AFFECTED[edit]  # the edit is seen at all
        # This notebook's block of the plugin's summary: its line, then its indented cell lines.
        block = re.search(rf"^{name}/research\.ipynb: .*?(?=^\S|\Z)", out, re.MULTILINE | re.DOTALL)
        assert block is not None, out
        report = block.group(0)
        ran = {int(m) for m in re.findall(r"cell (\d+) ran", report)}
        assert ran >= AFFECTED[edit], report  # every affected cell ran
        assert 9 not in ran, f"the static cell ran after {edit!r}:\n{report}"  # unaffected cells were restored


def test_sci_cache_without_nbval_is_a_usage_error(tmp_path: Path) -> None:
    with as_a_new_process(_env(tmp_path), tmp_path) as (out, err):
        status = pytest.main(["-p", "no:cacheprovider", *_plugin_args(), "--sci-cache", str(tmp_path)])
    assert status == 4, out.getvalue() + err.getvalue()
    assert "--sci-cache caches notebook cells run by nbval: add --nbval or --nbval-lax" in err.getvalue()


def test_an_unusable_cache_dir_runs_every_cell_with_one_warning(warm: tuple[Path, Path, dict[str, str]]) -> None:
    base, _, env = warm
    bad = base / "world_writable"
    bad.mkdir()
    bad.chmod(0o777)
    outcomes, out = nbval(base / "original", env, *_plugin_args(), "--sci-cache", f"--sci-cache-dir={bad}")
    assert all(outcomes.values()), out
    assert out.count("--sci-cache-dir unusable, every cell runs") == 1, out
    # Only this run's cells: an earlier run in this process (run_pytest) adds nothing to its report.
    assert f"research.ipynb: 0 restored, {len(CELLS)} ran\n" in out, out


def test_magics_shell_commands_and_no_kernelspec_run_as_nbval_runs_them(tmp_path: Path) -> None:
    # Bad input of issue 21: no kernelspec, %%bash, !pip, %run. The oracle is plain nbval.
    env = _env(tmp_path)
    directory = tmp_path / "nb"
    directory.mkdir()
    (directory / "helper.py").write_text("HELPED = 'yes'\nprint('helper ran')\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(source)
        for source in (
            "%%bash\necho from bash",
            "!pip --version > /dev/null && echo pip ok",
            "%run helper.py",
            "doubled = HELPED * 2\nprint(doubled)",
        )
    ]
    nb.metadata.pop("kernelspec", None)
    path = directory / "research.ipynb"
    nbformat.write(nb, path)
    execute_plainly(nb, directory, env)
    nb.metadata.pop("kernelspec", None)
    nbformat.write(nb, path)
    plain, plain_out = nbval(directory, env)
    assert len(plain) == 4 and all(plain.values()), plain_out
    cache = tmp_path / "cells"
    elsewhere = tmp_path / "elsewhere"  # a rootdir the notebook is not below (a sanitize file's folder, say)
    elsewhere.mkdir()
    for attempt in ("first", "second"):
        outcomes, out = cached(directory, env, cache, f"--rootdir={elsewhere}")
        assert outcomes == plain, (attempt, out)
        assert "cell 0 left plain: starts with the cell magic %%bash" in out, out
        assert "cell 1 left plain: only line magics or shell commands" in out, out
        assert "cell 2 left plain: only line magics or shell commands" in out, out
    assert "1 restored" in out, out  # the one computing cell, on the second run


def test_a_cache_from_a_machine_with_other_package_versions_misses_with_the_reason(tmp_path: Path) -> None:
    # CI across machines (issue 21, item 5): the same notebook and cache, another version of a
    # package the cell uses. Never a wrong pass: the cell runs, says why, and gets nbval's verdict.
    env = _env(tmp_path)
    site = tmp_path / "site"

    def install(version: str, factor: int) -> None:
        for old in site.glob("labpkg-*.dist-info"):
            shutil.rmtree(old)
        (site / "labpkg").mkdir(parents=True, exist_ok=True)
        (site / "labpkg" / "__init__.py").write_text(f"def scale(x):\n    return x * {factor}\n")
        meta = site / f"labpkg-{version}.dist-info"
        meta.mkdir()
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: labpkg\nVersion: {version}\n\n")
        (meta / "top_level.txt").write_text("labpkg\n")

    install("1.0", 2)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    directory = tmp_path / "nb"
    directory.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import labpkg"), nbformat.v4.new_code_cell("print(labpkg.scale(21))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    execute_plainly(nb, directory, env)
    nbformat.write(nb, directory / "research.ipynb")
    cache = tmp_path / "cells"
    first, out = cached(directory, env, cache)
    assert first == {0: True, 1: True}, out
    for version, factor in (("1.1", 2), ("2.0", 3)):  # same behaviour; then a changed one
        install(version, factor)
        plain, plain_out = nbval(directory, env)
        other, out = cached(directory, env, cache)
        assert other == plain, (version, out, plain_out)
        # The reason names the module (its key is its version). Until 2026-12-07 this also
        # asserted "version" in the output, which only pytest-asyncio's deprecation warning
        # in the nested run's stderr ("Future versions of ...") ever satisfied.
        assert re.search(r"^  cell 1 ran: .*\binput labpkg changed since the stored run", out, re.M), out
    assert plain == {0: True, 1: False}  # 63 where the notebook stored 42: the full run fails too


def test_llm_notices_in_the_outputs_are_a_plain_runs(tmp_path: Path) -> None:
    # The runner loads sci_ext, the notebook may not: no "[sci_ext] this cell" notice before the
    # notebook's own %load_ext, none about the runner's cache hits, and after it the notices a
    # plain run prints, also when the cell is restored; the notebook's own %%cached cells say
    # "cache hit: saved" as in a plain run. The oracle is plain nbval.
    from sci_ext.testing import FakeLLMServer

    call = "r = client.chat.completions.create(model='gpt-4o-mini', messages=[{{'role': 'user', 'content': '{}'}}])\nprint(r.choices[0].message.content)"
    with FakeLLMServer() as server:
        llm = {"OPENAI_BASE_URL": server.openai_url, "OPENAI_API_KEY": "sk-fake-nbval"}
        runs = iter(range(100))

        def fresh() -> dict[str, str]:  # each run its own XDG state (the notebook's own cache), as CI jobs
            return {**_env(tmp_path / f"run{next(runs)}"), **llm}

        directory = tmp_path / "nb"
        directory.mkdir()
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(source)
            for source in (
                "import openai\nclient = openai.OpenAI()",
                call.format("before"),
                "%load_ext sci_ext\n%sci_config llm.notify_cost_usd=0",
                call.format("after"),
                "%%cached own\n" + call.format("own"),
                "%%cached own\n" + call.format("own"),
            )
        ]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        execute_plainly(nb, directory, fresh())
        nbformat.write(nb, directory / "research.ipynb")
        stored = ["".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells]
        assert "[sci_ext] this cell: 1 LLM call" in stored[3], stored  # a plain run's notices
        assert "[sci_ext] cache hit: saved 1 LLM call" in stored[5], stored
        plain, plain_out = nbval(directory, fresh())
        assert all(plain.values()) and len(plain) == 6, plain_out
        cache = tmp_path / "cells"
        for attempt in ("first", "second"):
            outcomes, out = cached(directory, fresh(), cache)
            assert outcomes == plain, (attempt, out)
        assert "restored" in out, out


def sci_run(env: dict[str, str], *args: str, new_process: bool = False) -> subprocess.CompletedProcess[str]:
    """``jupyter sci run ARGS``: in a new process, or in this one as :func:`run_pytest` runs pytest."""
    if new_process:
        return subprocess.run(
            [sys.executable, "-m", "sci_ext", "run", *args], env=env, capture_output=True, text=True, timeout=300
        )
    from sci_ext.cli import main

    with as_a_new_process(env, Path.cwd()) as (out, err):
        status = main(["run", *args], prog="jupyter sci")
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def test_jupyter_sci_run_restores_sets_parameters_and_names_a_failing_cell(tmp_path: Path) -> None:
    env = _env(tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("size = 3", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import time\ntime.sleep(0.5)\nvalues = list(range(size))\nprint(values)"),
        nbformat.v4.new_code_cell("if size > 10:\n    raise ValueError(f'size {size} too large')\nlen(values)"),
    ]
    path = tmp_path / "param.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "out.ipynb"
    cache = tmp_path / "cells"
    first = sci_run(
        env, str(path), "-o", str(out), "-p", "size=4", "--cache-dir", str(cache), "--json", new_process=True
    )
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert [c["status"] for c in report["cells"]] == ["ran"] * 4  # parameters, injected, 2 cells
    executed = nbformat.read(out, as_version=4)
    assert "injected-parameters" in executed.cells[1].metadata["tags"]
    assert executed.cells[2].outputs[0]["text"] == "[0, 1, 2, 3]\n"
    second = sci_run(env, str(path), "-o", str(out), "-p", "size=4", "--cache-dir", str(cache))
    assert second.returncode == 0, second.stderr
    assert "restored" in second.stdout and "saved about" in second.stdout
    assert "4 restored, 0 ran" in second.stdout, second.stdout
    failing = sci_run(env, str(path), "-o", str(out), "-p", "size=20", "--cache-dir", str(cache))
    assert failing.returncode == 1
    assert "cell 3 failed: ValueError: size 20 too large" in failing.stderr, failing.stderr
    bad = sci_run(env, str(path), "-p", "2x=1")
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr
