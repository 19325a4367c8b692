"""Write notebooks/01_quickstart.ipynb (run once, then execute it to store outputs)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell(
        "# sci_ext quickstart\n\n"
        "Load the extension, look at the configuration, change it, override it from the "
        "environment, and see what a validation error looks like. Every setting shows its "
        "**source**: `default`, the `user` file, the `project` file (`sci_ext.toml`), an "
        "`env` variable, or a `runtime` override."
    ),
    new_code_cell("%load_ext sci_ext"),
    new_markdown_cell("One section of the configuration, with value, type and source:"),
    new_code_cell("%sci_config rag"),
    new_markdown_cell("Change settings for this session (validated, all or nothing):"),
    new_code_cell("%sci_config rag.top_k=8 retry.max_attempts=5"),
    new_markdown_cell("The same configuration from Python, as scripts and pipelines use it:"),
    new_code_cell(
        "from sci_ext import get_config, get_rag_config\n\n"
        "rag = get_rag_config()\n"
        "print(rag.top_k, rag.chunk_size, rag.similarity_threshold)\n"
        "print(get_config().source('rag.top_k'))"
    ),
    new_markdown_cell(
        "Environment variables `SCI_EXT_<SECTION>__<KEY>` override the files. A running kernel "
        "picks them up on `--reload`:"
    ),
    new_code_cell(
        "import os\n\nos.environ['SCI_EXT_RAG__CHUNK_SIZE'] = '1500'\n%sci_config --reload\n%sci_config rag.chunk_size"
    ),
    new_markdown_cell("A bad value is refused with a message naming the key, and the old value stays:"),
    new_code_cell(
        "from sci_ext import ConfigError, get_config_manager\n\n"
        "try:\n"
        "    get_config_manager().set('rag.similarity_threshold', 1.5)\n"
        "except ConfigError as error:\n"
        "    print('refused:', error)\n"
        "print('still', get_rag_config().similarity_threshold)"
    ),
    new_markdown_cell(
        "**The next two cells fail on purpose.** The same mistakes typed as magics: each shows a "
        "one-line `UsageError` naming the key, which is the expected output here. They are tagged "
        "`raises-exception`, so *Run All* (and the headless run, which labels them *expected error*) "
        "goes on."
    ),
    new_code_cell("%sci_config rag.top_k=many", metadata={"tags": ["raises-exception"]}),
    new_code_cell("%sci_config rag.chunk_overlap=2000", metadata={"tags": ["raises-exception"]}),
    new_markdown_cell("Drop a runtime override and check everything is valid:"),
    new_code_cell("%sci_config --reset rag.top_k\n%sci_config --validate\nprint(get_rag_config().top_k)"),
    new_markdown_cell(
        "## Migrating an AI-Scientist-v2 `bfts_config.yaml`\n\n"
        "`--dry-run` prints what would change and writes nothing; without it, the file is "
        "written (after a backup) into a `[bfts]` section, every key kept, known keys typed."
    ),
    new_code_cell(
        "import tempfile, pathlib\n\n"
        "work = pathlib.Path(tempfile.mkdtemp())\n"
        "(work / 'bfts_config.yaml').write_text(\n"
        "    'agent:\\n  type: parallel\\n  num_workers: 2\\n  code:\\n    model: gpt-4o\\n    temp: 0.7\\n'\n"
        ")\n"
        "%sci_config --migrate {work}/bfts_config.yaml --to {work}/sci_ext.toml --dry-run"
    ),
    new_code_cell(
        "%sci_config --migrate {work}/bfts_config.yaml --to {work}/sci_ext.toml\n"
        "print((work / 'sci_ext.toml').read_text())"
    ),
]

nb = new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbformat.write(nb, Path(__file__).resolve().parents[1] / "notebooks" / "01_quickstart.ipynb")
