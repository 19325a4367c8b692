"""Every notebook runs wherever sci_ext is installed: from the wheel, outside the checkout.

The session wheel (``built_wheel``) is installed with ``--no-deps`` into a new virtual
environment whose only other path entry is the test venv's ``site-packages`` (for ipykernel,
the SDKs, numpy: installing them from an index would take minutes and need the network). That
entry is a plain path in a ``.pth`` file, so the ``.pth`` files inside it (the editable install
of the checkout among them) are not run: ``sci_ext`` can only come from the wheel. Each notebook
is copied to a temporary directory and executed there by nbclient in a kernel of that venv,
with ``PYTHONPATH`` cleared, private XDG directories and no network. A last cell added to each
copy proves where ``sci_ext`` and the LLM stand-in were imported from.
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
from nbclient import NotebookClient

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


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_outside_the_checkout_against_the_wheel(source: Path, wheel_venv: Path, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    notebook = work / source.name
    shutil.copyfile(source, notebook)
    env = _kernel_env(wheel_venv, tmp_path / "home")
    spec = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / "sci-wheel"
    spec.mkdir(parents=True)
    argv = [str(wheel_venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "wheel", "language": "python"}))

    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb, timeout=300, kernel_name="sci-wheel", resources={"metadata": {"path": str(work)}}, allow_errors=True
    )
    saved = os.environ.get("JUPYTER_DATA_DIR")
    os.environ["JUPYTER_DATA_DIR"] = env["JUPYTER_DATA_DIR"]  # where the client looks for the kernelspec
    try:
        client.execute(env=env, cwd=str(work))
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_DATA_DIR", None)
        else:
            os.environ["JUPYTER_DATA_DIR"] = saved

    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"cell {index}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                if any(
                    word in out.text for word in ("Traceback", "UsageError", "No module named", "ModuleNotFoundError")
                ):
                    problems.append(f"cell {index} stderr: {out.text[:300]}")
    assert not problems, f"{source.name} outside the checkout:\n" + "\n".join(problems)

    probe = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    _, executable, package, testing = probe.strip().split("\n")
    assert Path(executable).parent == wheel_venv / "bin", probe
    assert Path(package).is_relative_to(wheel_venv) and Path(testing).is_relative_to(wheel_venv), probe
    assert not Path(package).is_relative_to(REPO), probe
    if source.stem == "07_llm_usage":  # the LLM calls reached the stand-in shipped in the wheel
        text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert "Hello from the fake server." in text and "LLM calls" in text, text[:2000]
