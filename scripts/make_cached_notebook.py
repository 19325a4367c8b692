"""Write notebooks/02_cached.ipynb (run once, then execute it to store outputs)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

EXPENSIVE = (
    "%%cached simulation\n"
    "import time\n"
    "print('simulating', n_samples, 'samples ...')\n"
    "time.sleep(0.5)  # stands in for an hour of work\n"
    "rng = np.random.default_rng(42)\n"
    "samples = normalize(rng.normal(size=n_samples))\n"
    "summary = {'n': samples.size, 'max': round(float(samples.max()), 4)}\n"
    "summary"
)
IGNORE = {"tags": ["nbval-ignore-output"]}

cells = [
    new_markdown_cell(
        "# `%%cached`: run once, restore instantly, never stale\n\n"
        "A cached cell stores the variables it binds and the outputs it shows. Run it again "
        "and, if nothing it depends on changed, they come back at once, even after a kernel "
        "restart. What it depends on is found from its code: the variables it reads (by "
        "content), the notebook functions it calls (by their code), the modules it imports and "
        "any `--files`. Change any of them and the cell runs again."
    ),
    new_markdown_cell(
        "This notebook uses a fresh cache directory so it behaves the same on every run; "
        "normally the cache lives in `cache.dir` and is shared by every kernel on the machine."
    ),
    new_code_cell(
        "%load_ext sci_ext\n"
        "import tempfile\n"
        "from sci_ext import get_config_manager\n\n"
        "config = get_config_manager().set('cache.dir', tempfile.mkdtemp(prefix='sci_ext-demo-'))"
    ),
    new_markdown_cell("The inputs: a parameter and a helper function defined in the notebook."),
    new_code_cell(
        "import numpy as np\n\nn_samples = 200_000\n\n\ndef normalize(x):\n    return (x - x.mean()) / x.std()"
    ),
    new_markdown_cell("The expensive cell. Its output appears while it runs, and is recorded:"),
    new_code_cell(EXPENSIVE),
    new_markdown_cell(
        "Run it again: nothing changed, so it is a **hit**. The variables are restored, the "
        "outputs replayed, then one short notice (`--quiet` hides it):"
    ),
    new_code_cell(EXPENSIVE),
    new_markdown_cell("Change an input, and the cell runs again:"),
    new_code_cell("n_samples = 100_000"),
    new_code_cell(EXPENSIVE),
    new_markdown_cell("Edit the helper function in an earlier cell, and the cell runs again too:"),
    new_code_cell("def normalize(x):\n    return (x - x.mean()) / (2 * x.std())"),
    new_code_cell(EXPENSIVE),
    new_markdown_cell("Counts for the whole machine (and this kernel):"),
    new_code_cell("%sci_cache stats", metadata=IGNORE),
    new_code_cell(
        "from sci_ext.core.cache.admin import stats\n\n"
        "s = stats()\n"
        "print('hits', s['hits'], 'misses', s['misses'], 'entries', s['entries'])"
    ),
    new_markdown_cell("Entries can be listed and cleared by name (or from a shell: `jupyter sci cache list`):"),
    new_code_cell("%sci_cache list", metadata=IGNORE),
    new_code_cell("%sci_cache clear simulation"),
]

nb = new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbformat.write(nb, Path(__file__).resolve().parents[1] / "notebooks" / "02_cached.ipynb")
