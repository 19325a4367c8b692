"""Write notebooks/05_observability.ipynb (run once, then execute it to store outputs).

python scripts/make_observability_notebook.py
jupyter nbconvert --to notebook --execute --inplace notebooks/05_observability.ipynb
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

IGNORE = {"tags": ["nbval-ignore-output"]}

cells = [
    new_markdown_cell(
        "# Observability: logs with a correlation id, metrics, health checks, alerts\n\n"
        "With `%load_ext sci_ext` every cell run gets a **correlation id**. Everything the cell "
        "does - log lines, retries, recorded errors - carries it into sci_ext's JSON log "
        "(`core.state_dir/logs/sci_ext.jsonl`), so one `grep` shows the whole story of one run. "
        "The same events feed **Prometheus metrics** (`/sci/metrics` on the Jupyter server), "
        "**health checks** (`%sci_health`, `jupyter sci health`) and **alerts**."
    ),
    new_code_cell(
        "# A private state directory for this demo (logs, metrics, error records live there).\n"
        "import os, tempfile\n"
        "os.environ['SCI_EXT_CORE__STATE_DIR'] = tempfile.mkdtemp(prefix='sci_ext-obs-')\n"
        "%load_ext sci_ext\n"
        "%sci_config retry.initial_wait=0.05 retry.jitter=0"
    ),
    new_markdown_cell(
        "## One id per cell run\n\n"
        "`context.current()` is what is running now: the correlation id, the kernel id and the "
        "execution count. A new cell, a new id."
    ),
    new_code_cell(
        "from sci_ext.core import context\n\n"
        "first = context.current().correlation_id\n"
        "print(len(first), 'hex digits; kernel id set:', context.current().kernel_id is not None)"
    ),
    new_code_cell("print('a new id:', context.current().correlation_id != first)"),
    new_markdown_cell(
        "## A `%%guarded` cell that retries\n\n"
        "`fetch` stands in for a flaky API: it fails twice with a connection error, then answers. "
        "`%%guarded` retries it; we keep the cell's correlation id in `cid` to look for it in the log."
    ),
    new_code_cell(
        "attempts = []\n\n"
        "def fetch():\n"
        "    attempts.append(1)\n"
        "    if len(attempts) < 3:\n"
        "        raise ConnectionError('connection reset by peer')\n"
        "    return {'answer': 42}"
    ),
    new_code_cell("%%guarded flaky --retries 3\ncid = context.current().correlation_id\nreply = fetch()\nreply"),
    new_markdown_cell(
        "## The JSON log\n\n"
        "Each line is one JSON object: `ts`, `level`, `logger`, `msg`, `correlation_id`, "
        "`kernel_id`, `execution_count` and the record's extras. The two retries of that cell:"
    ),
    new_code_cell(
        "import json\n"
        "from sci_ext.core.telemetry import log_path\n\n"
        "lines = [json.loads(line) for line in log_path().read_text().splitlines()]\n"
        "of_that_cell = [rec for rec in lines if rec['correlation_id'] == cid]\n"
        "for rec in of_that_cell:\n"
        "    print(rec['level'], rec['logger'], '|', rec['msg'])\n"
        "print(sorted(of_that_cell[0]))"
    ),
    new_markdown_cell(
        "Your own log lines carry the id too: `get_logger(name)` is a logger under `sci_ext` "
        "whose records go to the same file (extras become fields). Secret values loaded into "
        "the kernel are redacted in every line."
    ),
    new_code_cell(
        "from sci_ext.core import get_logger\n\n"
        "log = get_logger('experiment')\n"
        "log.info('epoch finished', extra={'epoch': 3, 'loss': 0.125})\n"
        "last = json.loads(log_path().read_text().splitlines()[-1])\n"
        "print(last['msg'], last['epoch'], last['loss'], last['correlation_id'] == context.current().correlation_id)"
    ),
    new_markdown_cell(
        "## Errors, with their correlation id\n\n"
        "Errors recorded by `handle_errors`, `%%guarded` and failing cells are kept in a small "
        "shared file, so the server's status page shows the errors of every kernel."
    ),
    new_code_cell(
        "from sci_ext.core import handle_errors\n"
        "from sci_ext.core.telemetry import read_errors\n\n"
        "@handle_errors(fallback='default answer')\n"
        "def parse(text):\n"
        "    return int(text)\n\n"
        "print(parse('forty-two'))\n"
        "newest = read_errors(1)[0]\n"
        "print(newest['where'].rsplit('.', 1)[-1], newest['category'], newest['error_type'], '|', newest['message'])\n"
        "print('same cell:', newest['correlation_id'] == context.current().correlation_id)"
    ),
    new_markdown_cell(
        "## `performance_monitor`\n\n"
        "A decorator for your own functions (sync or async): a duration histogram per "
        "function, errors by category, one log line per call (DEBUG; failures at ERROR)."
    ),
    new_code_cell(
        "from sci_ext.core import performance_monitor\n\n"
        "@performance_monitor\n"
        "def train_step(batch: list[float]) -> float:\n"
        "    return sum(batch) / len(batch)\n\n"
        "[train_step([1.0, 2.0, 3.0]) for _ in range(3)]"
    ),
    new_markdown_cell(
        "## Metrics\n\n"
        "`generate_metrics_text()` is this kernel's metrics in the Prometheus text format "
        "(the server's `/sci/metrics` adds up every kernel). The retries of the guarded cell, "
        "the monitored function, the recorded errors:"
    ),
    new_code_cell(
        "from sci_ext.core.telemetry import generate_metrics_text\n\n"
        "text = generate_metrics_text()\n"
        "for line in text.splitlines():\n"
        "    if line.startswith(('sci_retry_attempts_total', 'sci_function_duration_seconds_count', 'sci_errors_total')):\n"
        "        print(line)"
    ),
    new_markdown_cell("Every cell run with the extension loaded is timed (`sci_cell_duration_seconds`):"),
    new_code_cell(
        "print([line for line in text.splitlines() if line.startswith('sci_cell_duration_seconds_count')])",
        metadata=IGNORE,
    ),
    new_markdown_cell(
        "## Health checks\n\n"
        "`%sci_health` runs the built-in checks (cache directory writable, free disk, memory, "
        "CPU, vault readable, Redis when configured) and yours; each is `ok`, `degraded` or "
        "`failing`, with a detail and its timing. A check that raises or hangs is `failing`, "
        "never a crash. From a shell: `jupyter sci health` (exit status 1 when one fails)."
    ),
    new_code_cell("%sci_health", metadata=IGNORE),
    new_code_cell(
        "from sci_ext.core import health_check, run_health_checks\n\n"
        "@health_check('dataset')\n"
        "def dataset_present():\n"
        "    return ('ok', 'train.csv found') if os.path.exists('/') else ('failing', 'train.csv missing')\n\n"
        "@health_check('llm_api', timeout=0.2)\n"
        "def llm_api():\n"
        "    import time\n"
        "    time.sleep(5)  # hangs: reported as failing after the timeout\n\n"
        "report = run_health_checks(['dataset', 'llm_api'])\n"
        "print(report.status)\n"
        "for check in report.checks:\n"
        "    print(check.name, check.status, check.detail)"
    ),
    new_markdown_cell(
        "## Status and alerts\n\n"
        "`collect_status()` is the JSON of the server's `/sci/api/status` (what the JupyterLab "
        "panel and `%sci_dashboard` show): health, resources, cells, cache, breakers, recent "
        "errors with correlation ids and active alerts. Alerts follow the `monitoring` "
        "thresholds (error rate over 1 % in 5 min, latency over 1 s, ...); the same rules ship "
        "for Prometheus in `monitoring/prometheus/sci_ext.rules.yml`."
    ),
    new_code_cell(
        "from sci_ext.core.telemetry import collect_status\n\n"
        "status = collect_status(run_checks=False)\n"
        "print(sorted(status))\n"
        "print('errors shown:', len(status['errors']), '| newest from', status['errors'][0]['where'].rsplit('.', 1)[-1])"
    ),
    new_code_cell(
        "for alert in status['alerts']:\n    print(alert['name'], '-', alert['summary'])",
        metadata=IGNORE,
    ),
]

nb = new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbformat.write(nb, Path(__file__).resolve().parents[1] / "notebooks" / "05_observability.ipynb")
