"""``python tests/sci_test_server_main.py MODULE ARGS...``: run ``python -m MODULE ARGS...`` (a Jupyter
server: ``jupyter_server`` or ``jupyterlab``) without two start-up costs no test needs.

- ``rfc3987_syntax`` is imported at its first use (``sci_test_lazy_rfc3987.py``, about 1 s of CPU).
- JupyterLab asks ``node yarn.js config --json`` (which runs ``npm prefix -g`` too) for the npm
  registry each time it builds its application options: 2 to 6 times per server, about 0.3 s of
  CPU each, for a registry only the extension manager's install uses.  The answer is the same for
  every server of a test session, so the first server that asks saves it in the file
  ``SCI_TEST_YARN_CONFIG`` names (set by tests/conftest.py) and the others read it.

Everything else is the real server, started as ``python -m`` starts it.
"""

import json
import os
import runpy
import sys
from pathlib import Path

import sci_test_lazy_rfc3987  # noqa: F401 - installs the stand-in before jsonschema is imported

del sys.path[0]  # this folder: the server imports nothing else from the tests


def _share_yarn_config(cache: Path) -> None:
    import jupyterlab.commands as commands

    compute = commands._yarn_config

    def yarn_config(logger):  # noqa: ANN001, ANN202 - jupyterlab's signature
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            config = compute(logger)
            partial = cache.with_name(f"{cache.name}.{os.getpid()}")
            partial.write_text(json.dumps(config))
            os.replace(partial, cache)  # readers see the whole answer or none
            return config

    commands._yarn_config = yarn_config


if os.environ.get("SCI_TEST_YARN_CONFIG"):
    _share_yarn_config(Path(os.environ["SCI_TEST_YARN_CONFIG"]))
module = sys.argv.pop(1)
sys.argv[0] = module
runpy.run_module(module, run_name="__main__", alter_sys=True)
