"""Write and execute notebooks/06_dashboard.ipynb (outputs stored for nbval).

The widgets' saved state is dropped: plotly's FigureWidget state holds its whole
JavaScript bundle (5 MB), and nbval never reads it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

IGNORE = {"tags": ["nbval-ignore-output"]}

cells = [
    new_markdown_cell(
        "# `%sci_dashboard`: what this kernel is doing, live\n\n"
        "One panel: a badge per health check, live charts (CPU, memory, cell durations, cache hit "
        "ratio, retries, and LLM cost when calls are made), the circuit breakers with their next "
        "trial, recent errors with their correlation ids, and active alerts. It refreshes in a "
        "background thread, so it keeps moving while other cells run; `--stop`, the panel's Stop "
        "button or closing the widget ends it. In a terminal IPython it prints a text summary."
    ),
    new_code_cell("%load_ext sci_ext\n%sci_config retry.initial_wait=0.05 retry.jitter=0"),
    new_code_cell("%sci_dashboard --interval 1 --window 5", metadata=IGNORE),
    new_markdown_cell(
        "## A flaky endpoint and a `%%guarded` cell that retries\n\n"
        "A tiny local HTTP server stands in for an LLM API: it answers the statuses in `plan`, then 200. "
        "Watch the retries chart and the recent errors."
    ),
    new_code_cell(
        "import json, threading, urllib.request\n"
        "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n\n"
        "plan = []\n\n"
        "class FlakyAPI(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        status = plan.pop(0) if plan else 200\n"
        "        body = json.dumps({'status': status}).encode()\n"
        "        self.send_response(status)\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n\n"
        "    def log_message(self, *args):\n"
        "        pass\n\n"
        "server = ThreadingHTTPServer(('127.0.0.1', 0), FlakyAPI)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        "URL = f'http://127.0.0.1:{server.server_address[1]}/'\n\n"
        "def ask():\n"
        "    with urllib.request.urlopen(URL, timeout=2) as response:\n"
        "        return json.load(response)"
    ),
    new_code_cell("plan[:] = [503, 503]  # the next two calls fail"),
    new_code_cell("%%guarded ask --retries 3\nreply = ask()\nreply"),
    new_markdown_cell(
        "## A `%%cached` cell that hits\n\n"
        "The second cell has the same code and inputs as the first, so it is restored from the cache "
        "instead of run: the hit ratio chart moves."
    ),
    new_code_cell(
        "%%cached squares\nimport time\ntime.sleep(0.5)\nsquares = [i * i for i in range(10)]\nprint(squares)"
    ),
    new_code_cell(
        "%%cached squares\nimport time\ntime.sleep(0.5)\nsquares = [i * i for i in range(10)]\nprint(squares)",
        metadata=IGNORE,
    ),
    new_markdown_cell(
        "## The numbers behind the panel\n\n"
        "The panel shows `collect_status()`, the same data the server serves at `/sci/api/status`."
    ),
    new_code_cell(
        "from sci_ext.core.telemetry.status import collect_status\n\n"
        "status = collect_status()\n"
        "print('retries recorded:', status['retries']['total'] >= 2)\n"
        "print('cache hits recorded:', status['cache']['hits'] >= 1)\n"
        "print('checks:', sorted(c['name'] for c in status['checks'])[:3], '...')"
    ),
    new_markdown_cell("Outside a browser the same data is a one-screen summary:"),
    new_code_cell(
        "from sci_ext.kernel.dashboard_model import text_summary\n\nprint(text_summary(status))", metadata=IGNORE
    ),
    new_code_cell("%sci_dashboard --stop\nserver.shutdown()", metadata=IGNORE),
]

nb = new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
out = Path(__file__).resolve().parents[1] / "notebooks" / "06_dashboard.ipynb"
with tempfile.TemporaryDirectory() as home:
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        os.environ[var] = os.path.join(home, var.lower())
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(out.parent)}}).execute()
nb.metadata.pop("widgets", None)
nbformat.write(nb, out)
