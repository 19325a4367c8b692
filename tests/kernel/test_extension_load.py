"""`%load_ext sci_ext` in a real kernel and in a plain IPython shell."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.kernel


def test_load_ext_registers_magics_in_a_real_kernel(kernel):
    res = kernel.run(
        "ip = get_ipython(); sorted(m for m in ('sci_config', 'sci_cache', 'sci_secret') if m in ip.magics_manager.magics['line'])"
    ).check()
    assert res.result["text/plain"] == "['sci_cache', 'sci_config', 'sci_secret']"
    res = kernel.run(
        "'cached' in ip.magics_manager.magics['cell'] and 'guarded' in ip.magics_manager.magics['cell']"
    ).check()
    assert res.result["text/plain"] == "True"


def test_load_ext_twice_is_harmless(kernel):
    kernel.run("%load_ext sci_ext").check()
    res = kernel.run("%reload_ext sci_ext\n%sci_config rag.top_k").check()
    assert "rag.top_k" in res.text


def test_import_is_light():
    code = (
        "import sys, sci_ext;"
        "heavy = [m for m in ('tenacity', 'diskcache', 'cryptography', 'plotly', 'ipywidgets', 'redis', 'numpy', 'yaml', 'tomlkit', 'prometheus_client', 'psutil', 'pythonjsonlogger') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_ipython_shell_load_and_unload():
    code = (
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "n = {k: len(v) for k, v in ip.events.callbacks.items()}\n"
        "ip.run_line_magic('load_ext', 'sci_ext')\n"
        "assert 'sci_config' in ip.magics_manager.magics['line']\n"
        "assert len(ip.events.callbacks['pre_run_cell']) > n['pre_run_cell']\n"
        "ip.run_line_magic('unload_ext', 'sci_ext')\n"
        "assert {k: len(v) for k, v in ip.events.callbacks.items()} == n, ip.events.callbacks\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().endswith("ok"), out.stderr
