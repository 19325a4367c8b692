"""Every notebook passes nbval wherever sci_ext is installed: from the wheel, outside the checkout.

This is the test command's nbval run of ``notebooks/`` (the README's notebooks are documentation
that runs as tests), done where a user would run them: the session wheel (``built_wheel``) is
installed with ``--no-deps`` into a new virtual environment whose only other path entry is the
test venv's ``site-packages`` (for ipykernel, nbval, the SDKs, numpy: installing them from an
index would take minutes and need the network). That entry is a plain path in a ``.pth`` file,
so the ``.pth`` files inside it (the editable install of the checkout among them) are not run:
``sci_ext`` can only come from the wheel. The notebooks are copied to a temporary directory and
``pytest --nbval --nbval-current-env`` of that venv runs them there (one run for all of them),
with ``PYTHONPATH`` cleared, private XDG directories and no network: every cell must run without
an unexpected error and print its stored outputs (``tests/nbval_sanitize.cfg`` masks temporary
paths, addresses and cache keys). A last cell added to each copy proves where ``sci_ext`` and the
LLM stand-in were imported from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PROBE = (
    "import sys, sci_ext, sci_ext.testing\n"
    "print('PROBE', sys.executable, sci_ext.__file__, sci_ext.testing.__file__, sep='\\n')"
)

pytestmark = [pytest.mark.slow, pytest.mark.kernel]


@pytest.fixture(scope="module")
def wheel_venv(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv holding the wheel's sci_ext, borrowing every other package from the test venv."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(built_wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(),
    ).stdout.strip()
    (Path(purelib) / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what points at the checkout or measures coverage."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"} and not k.startswith(("COVERAGE", "COV_CORE"))
    }
    env.update(extra)
    return env


def _kernel_env(venv: Path, home: Path) -> dict[str, str]:
    dirs = {}
    for var in (
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "XDG_STATE_HOME",
        "XDG_DATA_HOME",
        "IPYTHONDIR",
        "JUPYTER_DATA_DIR",
    ):
        path = home / var.lower()
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        dirs[var] = str(path)
    return _clean_env(
        **dirs,
        PATH=os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")]),
        SCI_EXT_VAULT_PASSPHRASE="notebook-test-passphrase",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )


def test_the_wheel_venv_imports_sci_ext_from_the_wheel_only(wheel_venv: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(wheel_venv / "bin" / "python"), "-c", "import sci_ext, sci_ext.testing, sys; print(sci_ext.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(wheel_venv), done.stdout
    # The stand-in runs as documented: `python -m sci_ext.testing` prints both base URLs.
    proc = subprocess.Popen(
        [str(wheel_venv / "bin" / "python"), "-m", "sci_ext.testing"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert line.startswith("openai: http://127.0.0.1:") and "/v1  anthropic: http://127.0.0.1:" in line, line


# Loaded by the nested pytest from its rootdir (the folder of the copies): it writes what nbval
# saw of each cell (the outputs it compared, its verdict) to outputs.json for the checks below.
RECORDER = """
import json
from pathlib import Path

import pytest

CELLS = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or report.failed:
        CELLS.append({
            "notebook": item.fspath.basename,
            "cell": getattr(item, "cell_num", None),
            "tags": list(getattr(item, "cell", {}).get("metadata", {}).get("tags", [])),
            "outputs": getattr(item, "test_outputs", None) or [],
            "outcome": report.outcome,
            "message": report.longreprtext[-3000:] if report.failed else "",
        })


def pytest_sessionfinish(session):
    Path(session.config.rootpath, "outputs.json").write_text(json.dumps(CELLS))
"""


@pytest.fixture(scope="module")
def nbval_outside(wheel_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, list[dict]], str]:
    """One ``pytest --nbval`` run of a copy of every notebook, outside the checkout, in the wheel venv.

    The wheel venv's own Python runs pytest (nbval and the pytest plugin sci_ext registers come
    from there) and, with ``--nbval-current-env``, every notebook's kernel. A last cell added to
    each copy has no stored outputs, so nbval runs it without comparing; it proves where
    ``sci_ext`` and the LLM stand-in were imported from. Returns the cells nbval ran, per
    notebook, and the run's output.
    """
    base = tmp_path_factory.mktemp("anywhere")
    work = base / "elsewhere"
    work.mkdir()
    for source in NOTEBOOKS:
        nb = nbformat.read(source, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(PROBE))
        nbformat.write(nb, work / source.name)
    shutil.copyfile(REPO / "tests" / "nbval_sanitize.cfg", work / "nbval_sanitize.cfg")
    (work / "conftest.py").write_text(RECORDER)
    env = _kernel_env(wheel_venv, base / "home")
    args = ["-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval", "--nbval-current-env"]
    done = subprocess.run(
        [str(wheel_venv / "bin" / "python"), *args, "--nbval-sanitize-with", "nbval_sanitize.cfg"]
        + [source.name for source in NOTEBOOKS],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = done.stdout + done.stderr
    assert (work / "outputs.json").is_file(), output
    cells: dict[str, list[dict]] = {}
    for cell in json.loads((work / "outputs.json").read_text()):
        cells.setdefault(cell["notebook"], []).append(cell)
    return cells, output


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_passes_nbval_outside_the_checkout_against_the_wheel(
    source: Path, wheel_venv: Path, nbval_outside: tuple[dict[str, list[dict]], str]
) -> None:
    by_notebook, output = nbval_outside
    cells = by_notebook.get(source.name)
    assert cells, f"nbval ran no cell of {source.name}:\n{output[-5000:]}"
    code_cells = [c for c in nbformat.read(source, as_version=4).cells if c.cell_type == "code"]
    assert [c["cell"] for c in cells] == list(range(len(code_cells) + 1)), output[-5000:]  # + the probe

    # nbval's verdict: each cell ran without an unexpected error and printed its stored outputs.
    failed = [f"cell {c['cell']}: {c['message']}" for c in cells if c["outcome"] != "passed"]
    assert not failed, f"{source.name} under nbval outside the checkout:\n" + "\n".join(failed)

    # What nbval does not compare: stderr that warns of a failure, in cells whose stored output
    # is tagged to be ignored or that have none stored (cells that show an error on purpose aside).
    problems = []
    for cell in cells:
        if "raises-exception" in cell["tags"]:
            continue
        for out in cell["outputs"]:
            if out.get("output_type") == "error":
                problems.append(f"cell {cell['cell']}: {out.get('ename')}: {out.get('evalue')}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                if any(
                    word in out["text"]
                    for word in ("Traceback", "UsageError", "No module named", "ModuleNotFoundError")
                ):
                    problems.append(f"cell {cell['cell']} stderr: {out['text'][:300]}")
    assert not problems, f"{source.name} outside the checkout:\n" + "\n".join(problems)

    probe = "".join(o.get("text", "") for o in cells[-1]["outputs"] if o.get("output_type") == "stream")
    _, executable, package, testing = probe.strip().split("\n")
    assert Path(executable).parent == wheel_venv / "bin", probe
    assert Path(package).is_relative_to(wheel_venv) and Path(testing).is_relative_to(wheel_venv), probe
    assert not Path(package).is_relative_to(REPO), probe
    if source.stem == "07_llm_usage":  # the LLM calls reached the stand-in shipped in the wheel
        text = "".join(o.get("text", "") for c in cells for o in c["outputs"])
        assert "Hello from the fake server." in text and "LLM calls" in text, text[:2000]
