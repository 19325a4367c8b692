"""Write notebooks/03_guarded.ipynb (run once, then execute it to store outputs)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

IGNORE = {"tags": ["nbval-ignore-output"]}

cells = [
    new_markdown_cell(
        "# `%%guarded`: cells that survive rate limits and network blips\n\n"
        "LLM APIs answer 429 and 503, connections reset, requests hang. `%%guarded` re-runs a cell "
        "when it fails with a **transient** error (with exponential backoff, honouring `Retry-After`), "
        "fails at once on a **permanent** one, stops calling a service that keeps failing "
        "(**circuit breaker**, shared by every kernel on the machine), spaces calls out "
        "(**rate limit**) and can **fall back** to something else. The same pieces are a library: "
        "`retry_with_backoff`, `circuit_breaker`, `handle_errors`, `RateLimiter`."
    ),
    new_code_cell(
        "%load_ext sci_ext\n"
        "# Small waits for the demo, and no random jitter so the printed waits are reproducible.\n"
        "%sci_config retry.initial_wait=0.05 retry.jitter=0 breaker.fail_max=2 breaker.reset_timeout=0.5"
    ),
    new_markdown_cell(
        "## A flaky endpoint\n\n"
        "A tiny local HTTP server stands in for an LLM API. `plan` lists the statuses it answers "
        "next (a 429 comes with `Retry-After: 0.2`); when `plan` is empty it answers 200."
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
        "        if status == 429:\n"
        "            self.send_header('Retry-After', '0.2')\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n\n"
        "    def log_message(self, *args):\n"
        "        pass\n\n"
        "server = ThreadingHTTPServer(('127.0.0.1', 0), FlakyAPI)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        "URL = f'http://127.0.0.1:{server.server_address[1]}/'\n\n"
        "def ask():\n"
        "    with urllib.request.urlopen(URL, timeout=2) as response:\n"
        "        return json.load(response)\n\n"
        "ask()"
    ),
    new_markdown_cell(
        "## A guarded call that recovers\n\n"
        "The endpoint answers 503, then 429, then 200. Each retry prints one line: attempt, error, "
        "category, wait. The 429's `Retry-After` (0.2 s) replaces the computed backoff."
    ),
    new_code_cell("plan[:] = [503, 429]"),
    new_code_cell("%%guarded ask --retries 3\nanswer = ask()\nanswer"),
    new_markdown_cell(
        "A permanent error (404, a bad request, a wrong API key) is not retried: one summary line, "
        "then the original traceback."
    ),
    new_code_cell("plan[:] = [404]"),
    new_code_cell("%%guarded ask --retries 3\nanswer = ask()", metadata={"tags": ["raises-exception"]}),
    new_markdown_cell(
        "## A circuit breaker opens, the fallback runs\n\n"
        "With `breaker.fail_max=2`, two consecutive failures open the breaker `flaky-api`. The third "
        "attempt is refused without calling the service, and `--fallback` runs with the error bound "
        "to `_sci_error`. Every cell and kernel on this machine naming `flaky-api` now fails fast "
        "until `breaker.reset_timeout` has passed."
    ),
    new_code_cell(
        "from sci_ext.core import CircuitBreaker\n\n"
        "CircuitBreaker('flaky-api').reset()  # a clean start when the notebook is re-run\n"
        "plan[:] = [503] * 10"
    ),
    new_code_cell(
        "%%guarded ask --retries 5 --breaker flaky-api --fallback answer = {'status': 'fallback', "
        "'because': type(_sci_error).__name__}\n"
        "answer = ask()",
        metadata=IGNORE,
    ),
    new_code_cell(
        "print(answer)\n"
        "print(CircuitBreaker('flaky-api').state)\n"
        "print(len(plan), 'planned failures left: the service was called twice, not six times')"
    ),
    new_markdown_cell(
        "After `reset_timeout` the breaker is half-open: one trial call goes through. The service "
        "is healthy again, so the trial succeeds and the breaker closes."
    ),
    new_code_cell("import time\n\nplan.clear()\ntime.sleep(0.6)\nprint(CircuitBreaker('flaky-api').state)"),
    new_code_cell("%%guarded ask --breaker flaky-api\nanswer = ask()\nanswer"),
    new_code_cell("CircuitBreaker('flaky-api').state"),
    new_markdown_cell(
        "## A rate-limited loop\n\n"
        "`--rate 5/second` takes a token from a bucket shared by every kernel on the machine under "
        "the cell's name; when none is left the cell waits (and says so) instead of erroring."
    ),
    new_code_cell(
        "for i in range(4):\n"
        "    get_ipython().run_cell_magic('guarded', 'llm --rate 5/second', 'reply = ask()')\n"
        "print('4 calls done')",
        metadata=IGNORE,
    ),
    new_markdown_cell(
        "## The same as a library\n\n"
        "`retry_with_backoff` retries transient errors only; `handle_errors` records and logs what "
        "escapes and returns a fallback. Both keep the function's signature and work on `async def`."
    ),
    new_code_cell(
        "from sci_ext.core import handle_errors, retry_with_backoff\n\n"
        "@handle_errors(fallback=lambda error: {'status': 'degraded', 'because': type(error).__name__})\n"
        "@retry_with_backoff(max_attempts=3)\n"
        "def ask_llm():\n"
        "    return ask()\n\n"
        "plan[:] = [503]\n"
        "print(ask_llm())      # recovers after one retry\n"
        "plan[:] = [401]\n"
        "print(ask_llm())      # an auth error: no retry, the fallback"
    ),
    new_markdown_cell("In your own tests, turn the waits off (and cap the attempts) with the testing switch:"),
    new_code_cell(
        "from sci_ext.core.resilience import testing\n\n"
        "with testing(attempts=1):\n"
        "    plan[:] = [503]\n"
        "    print(ask_llm())  # one attempt, no wait: the fallback\n"
        "server.shutdown()"
    ),
]

nb = new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbformat.write(nb, Path(__file__).resolve().parents[1] / "notebooks" / "03_guarded.ipynb")
