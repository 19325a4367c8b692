"""The review's redaction table (section 2) as tests: every output channel in a real kernel.

A notebook with one cell per channel is executed by nbclient in a real kernel
whose own stdout/stderr go to files (what the Jupyter server logs), saved with
nbformat, and grepped: per cell, in the whole file (widget state, metadata), in
the kernel process's output files and in IPython's history database.  A channel
*leaks* when the saved form holds the value, or a prefix or suffix of 12
characters or more (what a truncating display shows).  Reversed, base64,
upper-cased and spaced-out forms are not the value and are not looked for (by
design, README).  The control-channel case (V6) and the reply channels
(inspect, user_expressions, history) run through jupyter_client.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kernel

KEY = "sk-proj-Zx9QvT3mK8pL2wR7nB4yH6jD1fG5sA0c"
LONG = "sk-ant-api03-" + "Q7vB2xK9mN4pL8rT1wY6zC3dF5gH0jS" * 3 + "AbCdE"  # 111 characters
AWS = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
VALUES = {"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": LONG, "AWS_SECRET_ACCESS_KEY": AWS}

SETUP = [
    "%load_ext sci_ext",
    "from sci_ext.core import get_security_manager\n"
    "sm = get_security_manager()\n"
    "key = sm.get_secret('OPENAI_API_KEY')\nlong = sm.get_secret('ANTHROPIC_API_KEY')\n"
    "aws = sm.get_secret('AWS_SECRET_ACCESS_KEY')",
    "%sci_secret export OPENAI_API_KEY",
    "import sys, os, time, json, base64, logging, subprocess, threading, warnings, urllib.parse",
]

#: (channel, cell source): the review's table, one row per channel.
CHANNELS: list[tuple[str, str]] = [
    ("print", "print(key)"),
    ("execute_result", "key"),
    ("repr in list", "[key, long]"),
    ("dict result", "{'k': key, 'aws': aws}"),
    ("bytes repr", "key.encode()"),
    ("halves 10/30 in two prints", "print(key[:10]); print(key[10:])"),
    ("halves 20/20 in two prints", "print(key[:20]); print(key[20:])"),
    ("halves in one burst", "print(key[:10], end=''); print(key[10:])"),
    (
        "halves across flushes 0.6 s apart",
        "sys.stdout.write(key[:20]); sys.stdout.flush(); time.sleep(0.6); sys.stdout.write(key[20:] + '\\n')",
    ),
    ("halves on stdout and stderr", "print(key[:20]); print(key[20:], file=sys.stderr)"),
    ("reversed (by design)", "print(key[::-1])"),
    ("base64 (by design)", "print(base64.b64encode(key.encode()).decode())"),
    ("upper (by design)", "print(key.upper())"),
    ("spaced (by design)", "print(' '.join(key))"),
    ("pandas DataFrame", "import pandas as pd\npd.DataFrame({'name': ['a'], 'key': [key]})"),
    ("pandas truncated cell", "pd.DataFrame({'name': ['b'], 'key': [long]})"),
    ("pandas Series repr", "print(pd.Series([long, key]))"),
    ("logging warning", "logging.getLogger('user').warning('using %s', key)"),
    (
        "logging.exception",
        "try:\n    raise ValueError(long)\nexcept ValueError:\n    logging.getLogger('user').exception('failed')",
    ),
    (
        "logging extra + custom formatter",
        "h = logging.StreamHandler(sys.stderr)\nh.setFormatter(logging.Formatter('%(message)s %(token)s'))\n"
        "lg = logging.getLogger('structured'); lg.addHandler(h); lg.propagate = False\n"
        "lg.warning('call', extra={'token': key})",
    ),
    ("warnings.warn", "warnings.warn(f'deprecated key {key}')"),
    ("exception message + traceback", "raise RuntimeError(f'the API rejected {long}')"),
    ("%xmode Verbose locals", "%xmode Verbose\ndef call(secret):\n    return 1 / 0\ncall(long)"),
    ("%xmode back to Context", "%xmode Context"),
    ("thread print (joined)", "t = threading.Thread(target=lambda: print(key)); t.start(); t.join()"),
    (
        "thread print after the cell ended",
        "threading.Thread(target=lambda: (time.sleep(0.5), print('late', key))).start()",
    ),
    ("next cell (receives late output)", "time.sleep(1.5)"),
    ("%env NAME", "%env OPENAI_API_KEY"),
    ("%env", "%env"),
    ("!echo $NAME", "!echo $OPENAI_API_KEY"),
    ("os.environ", "os.environ"),
    ("print(os.environ[NAME])", "print(os.environ['OPENAI_API_KEY'])"),
    ("%history -o -n", "%history -o -n -l 8"),
    ("_ih / In", "print(In[-3:]); _ih[-2:]"),
    ("Out", "Out"),
    (
        "display Markdown",
        "from IPython.display import display, Markdown, HTML, JSON, Latex\ndisplay(Markdown(f'`{key}`'))",
    ),
    ("display HTML", "display(HTML(f'<b>{key}</b>'))"),
    ("display JSON", "display(JSON({'key': key}))"),
    ("display Latex", "display(Latex(f'$\\\\texttt{{{key}}}$'))"),
    ("update_display", "h = display('placeholder', display_id=True)\nh.update(key)"),
    ("sys.stdout.buffer.write", "getattr(sys.stdout, 'buffer', None) and sys.stdout.buffer.write(key.encode())"),
    ("os.write(1)", "os.write(1, (key + '\\n').encode()); time.sleep(0.3)"),
    ("os.write(2)", "os.write(2, (key + '\\n').encode()); time.sleep(0.3)"),
    ("print(file=sys.__stdout__)", "print(key, file=sys.__stdout__, flush=True); time.sleep(0.3)"),
    ("subprocess stderr", "subprocess.run(['sh', '-c', 'echo $OPENAI_API_KEY >&2']); time.sleep(0.3)"),
    (
        "subprocess stdout captured, printed",
        "print(subprocess.run(['sh', '-c', 'echo $OPENAI_API_KEY'], capture_output=True, text=True).stdout)",
    ),
    ("%time print", "%time print(key)"),
    ("%%capture + show()", "%%capture cap\nprint(key)\n"),
    ("captured output shown", "cap.show()"),
    ("AWS key print", "print(aws)"),
    ("AWS json-in-json", "print(json.dumps({'outer': json.dumps({'k': aws})}))"),
    (
        "AWS URL-quoted",
        "print(urllib.parse.quote(aws), urllib.parse.quote_plus(aws), urllib.parse.quote(aws, safe=''))",
    ),
    ("%whos", "%whos str"),
    ("ipywidgets Text", "import ipywidgets as widgets\ndisplay(widgets.Text(value=key))"),
    ("ipywidgets Image bytes", "display(widgets.Image(value=b'GIF89a' + key.encode(), format='gif'))"),
    (
        "%%guarded retry and summary lines",
        "%%guarded ask --retries 2 --wait-initial 0.01 --wait-max 0.01 --on RuntimeError\n"
        "raise RuntimeError(f'Error code: 401 - Incorrect API key provided: {long}')",
    ),
]


def fragments(value: str) -> list[str]:
    """What counts as a leak of ``value``: itself, its 12-character prefix and suffix."""
    return [value, value[:12], value[-12:]]


def leaked(text: str) -> list[str]:
    """Names of the values whose fragments appear in ``text`` (also JSON-escaped)."""
    found = []
    for name, value in VALUES.items():
        forms = {f for frag in fragments(value) for f in (frag, json.dumps(frag)[1:-1])}
        if any(f in text for f in forms):
            found.append(name)
    return found


def merged_streams(outputs: list[dict[str, Any]]) -> str:
    """Consecutive stream outputs joined, as JupyterLab's output area merges them before saving."""
    out, last = [], None
    for o in outputs:
        if o.get("output_type") == "stream":
            text = o.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            if last == o.get("name"):
                out[-1] += text
            else:
                out.append(text)
            last = o.get("name")
        else:
            last = None
            out.append(json.dumps(o))
    return "\n".join(out)


def _store(fast_vault: dict[str, Path]) -> None:
    from sci_ext.core.security import get_security_manager

    for name, value in VALUES.items():
        get_security_manager().set_secret(name, value)


def test_every_channel_of_the_review_table(fast_vault, tmp_path: Path) -> None:
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    _store(fast_vault)
    ipython_dir = tmp_path / "ipython"
    sources = SETUP + [code for _, code in CHANNELS]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    km = KernelManager(kernel_name="python3")
    km.kernel_spec.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    client = NotebookClient(
        nb, km=km, timeout=120, allow_errors=True, resources={"metadata": {"path": str(fast_vault["project"])}}
    )
    out_path, err_path = tmp_path / "kernel.stdout", tmp_path / "kernel.stderr"
    env = {**os.environ, "IPYTHONDIR": str(ipython_dir), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    # ipykernel does not watch fds 1/2 under pytest (PYTEST_CURRENT_TEST): run it as a server would
    env.pop("PYTEST_CURRENT_TEST", None)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        client.execute(stdout=out, stderr=err, env=env)
    saved = tmp_path / "channels.ipynb"
    nbformat.write(nb, saved)

    table = []
    for (channel, _), cell in zip(CHANNELS, nb.cells[len(SETUP) :]):
        cell_text = json.dumps(cell.get("outputs", [])) + merged_streams(cell.get("outputs", []))
        table.append((channel, leaked(cell_text)))
    whole = saved.read_text()
    process_output = out_path.read_text(errors="replace") + err_path.read_text(errors="replace")
    history = ""
    for db in ipython_dir.rglob("history.sqlite"):
        with sqlite3.connect(db) as conn:
            history += json.dumps(conn.execute("select * from history").fetchall())
            history += json.dumps(conn.execute("select * from output_history").fetchall())
    extra = [
        ("whole notebook file (metadata, widget state)", leaked(whole)),
        ("kernel process stdout/stderr (server log)", leaked(process_output)),
        ("IPython history.sqlite", leaked(history)),
    ]
    table += extra
    report = "\n".join(f"{'LEAK' if names else 'ok  '} {channel} {names or ''}" for channel, names in table)
    tried, leaks = len(table), sum(bool(names) for _, names in table)
    print(f"\nredaction channels: {tried} tried, {leaks} leaked\n{report}")
    assert leaks == 0, report
    assert tried >= 49
    # the channels did produce output (not vacuously clean): markers where values were
    cells = {
        channel: json.dumps(cell.get("outputs", [])) for (channel, _), cell in zip(CHANNELS, nb.cells[len(SETUP) :])
    }
    for channel in (
        "print",
        "pandas truncated cell",
        "%xmode Verbose locals",
        "%whos",
        "AWS URL-quoted",
        "%%guarded retry and summary lines",
        "ipywidgets Text",
        "update_display",
    ):
        assert "[REDACTED:" in cells[channel], (channel, cells[channel][:500])
    assert "[REDACTED:OPENAI_API_KEY]" in process_output  # the fd-level writes reached the log, redacted
    assert "image/gif" not in whole or "GIF89a" + KEY not in whole


def test_control_channel_requests_do_not_release_a_held_tail(fast_vault, kernel) -> None:
    """V6: kernel_info on the control channel every 0.2 s while a value is written in two flushes."""
    _store(fast_vault)
    kernel.run(
        "from sci_ext.core import get_security_manager\nkey = get_security_manager().get_secret('OPENAI_API_KEY')"
    ).check()
    stop = threading.Event()

    def ping() -> None:
        while not stop.is_set():
            kernel.kc.control_channel.send(kernel.kc.session.msg("kernel_info_request", {}))
            time.sleep(0.2)

    for _ in range(3):
        pinger = threading.Thread(target=ping)
        pinger.start()
        try:
            res = kernel.run(
                "import sys, time\nsys.stdout.write(key[:11]); sys.stdout.flush(); time.sleep(1.5)\n"
                "sys.stdout.write(key[11:] + '\\n')"
            ).check()
        finally:
            stop.set()
            pinger.join()
            stop.clear()
        texts = [o["text"] for o in res.outputs if o["type"] == "stream"]
        assert "".join(texts) == "[REDACTED:OPENAI_API_KEY]\n", texts
        assert KEY[:11] not in json.dumps(res.outputs)


def test_reply_channels(fast_vault, kernel) -> None:
    """inspect (key?), inspect_reply, user_expressions and history_reply."""
    _store(fast_vault)
    kernel.run(
        "from sci_ext.core import get_security_manager\nkey = get_security_manager().get_secret('OPENAI_API_KEY')\nkey"
    ).check()
    replies = [
        kernel.run("key?").outputs,
        kernel.kc.inspect("key", 3, detail_level=1, reply=True, timeout=30)["content"],
        kernel.kc.execute("1", user_expressions={"k": "key", "rev": "key[::-1]"}, reply=True, timeout=30)["content"],
        kernel.kc.history(raw=True, output=True, hist_access_type="tail", n=10, reply=True, timeout=30)["content"],
    ]
    for reply in replies:
        assert leaked(json.dumps(reply)) == [], reply
    assert "[REDACTED:OPENAI_API_KEY]" in json.dumps(replies[2])
