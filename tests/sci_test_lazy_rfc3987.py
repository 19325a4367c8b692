"""rfc3987_syntax, imported when first used (sci_ext's tests only: the hub, tests/hub_harness.py,
the Jupyter servers, tests/sci_test_server_main.py, and pytest itself, ``-p`` in scripts/dev.sh).

jsonschema imports ``rfc3987_syntax`` (reached through jupyter_events by every Jupyter server
and JupyterHub); its import builds an Earley grammar, about 1 s of CPU per process start, for
a checker most runs never call.  Imported before jsonschema, this module puts a stand-in in
``sys.modules`` that imports the real module at its first use: the same validation, the cost
only when used.
"""

import importlib
import importlib.util
import sys
import threading
import types

NAME = "rfc3987_syntax"
_lock = threading.Lock()
_real = None


def _load():
    global _real
    with _lock:
        if _real is None:
            if sys.modules.get(NAME) is _proxy:
                del sys.modules[NAME]
            _real = importlib.import_module(NAME)
    return _real


def is_valid_syntax(term, value):
    return _load().is_valid_syntax(term, value)


def _getattr(name):
    if name.startswith("_"):  # the import system (__path__) and pytest's fixture scan probe: not a use
        raise AttributeError(name)
    return getattr(_load(), name)


_proxy = types.ModuleType(NAME, "Loads the real rfc3987_syntax on first use.")
_proxy.is_valid_syntax = is_valid_syntax
_proxy.__getattr__ = _getattr
if NAME not in sys.modules and importlib.util.find_spec(NAME) is not None:
    sys.modules[NAME] = _proxy
