"""`%sci_secret` and redaction in real kernels, and a notebook executed by nbclient."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from security_fixtures import run_with_input, scan_for

pytestmark = [pytest.mark.kernel, pytest.mark.module_kernel]

DEMO = "sk-demo-7f3a9c1e5b2d4a6f8e0c"


def set_secret(name: str, value: str) -> None:
    from sci_ext.core.security import get_security_manager

    get_security_manager().set_secret(name, value)


def test_sci_secret_verbs_in_a_kernel(fast_vault, kernel) -> None:
    set_secret("DEMO_API_KEY", DEMO)
    set_secret("OTHER_TOKEN", "other-token-value-99")
    listed = kernel.run("%sci_secret list").check()
    html = listed.displays[0]["text/html"]
    assert "DEMO_API_KEY" in html and "OTHER_TOKEN" in html and DEMO not in html
    exported = kernel.run("%sci_secret export DEMO_API_KEY").check()
    assert "exported DEMO_API_KEY" in exported.stdout
    shown = kernel.run("import os\nprint(os.environ['DEMO_API_KEY'])\nos.environ['DEMO_API_KEY']").check()
    assert shown.stdout == "[REDACTED:DEMO_API_KEY]\n"
    assert shown.result["text/plain"] == "'[REDACTED:DEMO_API_KEY]'"
    assert kernel.run("os.environ['DEMO_API_KEY'] == " + repr(DEMO)).check().result["text/plain"] == "True"
    kernel.run("%sci_secret export --all").check()
    assert "[REDACTED:OTHER_TOKEN]" in kernel.run("print(os.environ['OTHER_TOKEN'])").check().stdout
    rotated = kernel.run("%sci_secret rotate").check()
    assert "2 secret(s) re-encrypted" in rotated.stdout
    assert kernel.run("%sci_secret lock").check().stdout.strip() == "vault locked"
    kernel.run("%sci_secret delete OTHER_TOKEN").check()
    from sci_ext.core.security import Vault

    assert Vault(fast_vault["XDG_DATA_HOME"] / "sci_ext" / "vault.json").names() == ["DEMO_API_KEY"]


def test_sci_secret_usage_errors(fast_vault, kernel) -> None:
    for line, expected in [
        ("%sci_secret", "verbs: set, list"),
        ("%sci_secret frob", "invalid choice"),
        ("%sci_secret set", "exactly one NAME"),
        ("%sci_secret list X", "takes no names"),
        ("%sci_secret export", "needs NAME ... or --all"),
        ("%sci_secret delete MISSING", "KeyError: no secret named 'MISSING'"),
        ("%sci_secret export MISSING", "KeyError"),
        ("%sci_secret lock --all", "--all only goes with export"),
    ]:
        res = kernel.run(line)
        # IPython reports a UsageError of a magic on stderr, in one line
        message = res.error["evalue"] if res.error else res.stderr
        assert expected in message, (line, message)
        assert res.error is None or res.error["ename"] == "UsageError"
        assert res.error or res.stderr.startswith("UsageError") and res.stderr.count("\n") == 1


def test_set_prompts_with_getpass_and_keeps_the_value_out_of_history(fast_vault, kernel) -> None:
    value = "typed-into-getpass-4242"
    out = run_with_input(kernel, "%sci_secret set TYPED_KEY", [value])
    assert out["prompts"] == [("Value of TYPED_KEY: ", True)]
    assert out["reply"]["status"] == "ok", out
    text = json.dumps(out["outputs"])
    assert "stored TYPED_KEY" in text and value not in text
    history = kernel.run("import json\nprint(json.dumps(list(In)))").check().stdout
    assert "%sci_secret set TYPED_KEY" in history or "sci_secret" in history
    assert value not in history
    from sci_ext.core.security import Vault

    assert Vault(fast_vault["XDG_DATA_HOME"] / "sci_ext" / "vault.json").get("TYPED_KEY") == value
    # the frontend cannot prompt: a clear error, not a hang
    res = kernel.run("%sci_secret set OTHER")
    assert "cannot prompt" in res.stderr


def test_passphrase_prompt_through_the_kernel(fast_vault, kernel_factory, monkeypatch) -> None:
    set_secret("DEMO_API_KEY", DEMO)
    monkeypatch.delenv("SCI_EXT_VAULT_PASSPHRASE")
    k = kernel_factory()
    locked = k.run("from sci_ext.core import get_security_manager\nget_security_manager().get_secret('DEMO_API_KEY')")
    assert locked.error is not None and locked.error["ename"] == "VaultLockedError"
    from security_fixtures import TEST_PASSPHRASE

    out = run_with_input(
        k, "%sci_secret export DEMO_API_KEY\nimport os\nprint(os.environ['DEMO_API_KEY'])", [TEST_PASSPHRASE]
    )
    assert out["prompts"] == [("Vault passphrase: ", True)]
    text = json.dumps(out["outputs"])
    assert "[REDACTED:DEMO_API_KEY]" in text and DEMO not in text and TEST_PASSPHRASE not in text


def test_redaction_of_every_output_kind(fast_vault, kernel) -> None:
    set_secret("DEMO_API_KEY", DEMO)
    kernel.run(
        "from sci_ext.core import get_security_manager\nkey = get_security_manager().get_secret('DEMO_API_KEY')"
    ).check()
    cells = [
        "print('key:', key)",
        "import sys\nsys.stdout.write(key[:9]); sys.stdout.flush(); sys.stdout.write(key[9:] + '\\n')",
        "import sys, time\nfor ch in key: sys.stderr.write(ch); sys.stderr.flush()\nprint(file=sys.stderr)",
        "from IPython.display import HTML, Markdown, JSON, display\n"
        "display(HTML(f'<b>{key}</b>')); display(Markdown(f'**{key}**')); display(JSON({'k': key}))",
        "key",
        "{'nested': [key]}",
        "import logging\nlogging.getLogger('demo_user_code').warning('using %s', key)",
        "raise RuntimeError(f'bad key {key}')",
        "def f(x):\n    raise ValueError(x)\nf(key)",
        "import os\nos.environ['DEMO_API_KEY'] = key\n!echo $DEMO_API_KEY",
        "print(key[:9], end='')",  # a prefix at the end of a cell is not the value: shown as is
    ]
    for code in cells:
        res = kernel.run(code)
        blob = json.dumps(res.outputs)
        assert DEMO not in blob, (code, blob)
        if code != cells[-1]:
            assert "[REDACTED:DEMO_API_KEY]" in blob, (code, blob)
    assert kernel.run("print(key[:9], end='')").stdout == DEMO[:9]
    info = kernel.kc.inspect("key", 3, detail_level=0, reply=True, timeout=30)
    assert DEMO not in json.dumps(info["content"])


def test_unload_restores_the_session(fast_vault, kernel) -> None:
    res = kernel.run("ip = get_ipython()\n'send' in ip.kernel.session.__dict__").check()
    assert res.result["text/plain"] == "True"
    res = kernel.run("%unload_ext sci_ext\n'send' in ip.kernel.session.__dict__").check()
    assert res.result["text/plain"] == "False"


def test_two_kernels_setting_different_secrets_at_once(fast_vault, kernel_factory) -> None:
    kernels = [kernel_factory(), kernel_factory()]
    code = (
        "from sci_ext.core import get_security_manager\n"
        "sm = get_security_manager()\n"
        "for i in range(8):\n"
        "    sm.set_secret(f'{who}_{i}', f'value-{who}-{i}')\n"
    )
    ids = [k.kc.execute(f"who = {who!r}\n" + code) for k, who in zip(kernels, ("KA", "KB"))]
    for k, msg_id in zip(kernels, ids):
        reply = k.kc.get_shell_msg(timeout=120)
        while reply["parent_header"]["msg_id"] != msg_id:  # replies of earlier cells
            reply = k.kc.get_shell_msg(timeout=120)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok", reply["content"]
    from sci_ext.core.security import Vault

    v = Vault(fast_vault["XDG_DATA_HOME"] / "sci_ext" / "vault.json")
    assert sorted(v.names()) == sorted([f"KA_{i}" for i in range(8)] + [f"KB_{i}" for i in range(8)])
    assert v.get("KB_7") == "value-KB-7"


def test_notebook_executed_by_nbclient_contains_no_secret(fast_vault, tmp_path: Path) -> None:
    """End to end: print, HTML, Markdown, JSON, exception, log, export; the saved file is clean."""
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    set_secret("DEMO_API_KEY", DEMO)
    log_file = fast_vault["project"] / "notebook.log"
    sources = [
        "%load_ext sci_ext",
        "from sci_ext.core import get_security_manager\nkey = get_security_manager().get_secret('DEMO_API_KEY')",
        "print('the key is', key)",
        "import sys\nsys.stdout.write(key[:5]); sys.stdout.flush(); sys.stdout.write(key[5:] + '\\n')",
        "print('on stderr', key, file=sys.stderr)",
        "from IPython.display import HTML, Markdown, JSON, display\n"
        "display(HTML(f'<code>{key}</code>'))\ndisplay(Markdown(f'`{key}`'))\ndisplay(JSON({'key': key}))",
        "key",
        f"import logging\nhandler = logging.FileHandler({str(log_file)!r})\n"
        "log = logging.getLogger('sci_ext.notebook')\n"
        "log.addHandler(handler)\nlog.warning('calling the API with %s', key)\nhandler.flush()",
        "raise RuntimeError(f'the API rejected {key}')",
        "%sci_secret export DEMO_API_KEY",
        "import os\nprint(os.environ['DEMO_API_KEY'])",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    km = KernelManager(kernel_name="python3")
    km.kernel_spec.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    client = NotebookClient(
        nb, km=km, timeout=120, allow_errors=True, resources={"metadata": {"path": str(fast_vault["project"])}}
    )
    client.execute()
    saved = tmp_path / "executed.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text()
    assert DEMO not in text
    assert scan_for(DEMO, saved, log_file, fast_vault["XDG_STATE_HOME"], fast_vault["XDG_DATA_HOME"]) == []
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    joined = json.dumps(outputs)
    assert joined.count("[REDACTED:DEMO_API_KEY]") >= 10
    assert any(o.get("output_type") == "error" and "[REDACTED:DEMO_API_KEY]" in o["evalue"] for o in outputs)
    assert "[REDACTED:DEMO_API_KEY]" in log_file.read_text()
    kinds = {k for o in outputs for k in o.get("data", {})}
    assert {"text/html", "text/markdown", "application/json", "text/plain"} <= kinds


def test_sci_config_migrate_dotenv_in_a_kernel(fast_vault, kernel) -> None:
    dotenv = fast_vault["project"] / ".env"
    dotenv.write_text(f"OPENAI_API_KEY={DEMO}\nSCI_EXT_CACHE__TTL_SECONDS=60\n")
    res = kernel.run(f"%sci_config --migrate {dotenv}").check()
    assert "1 credential(s) into the vault: OPENAI_API_KEY" in res.stdout and DEMO not in res.text
    assert DEMO not in dotenv.read_text()
    res = kernel.run("%sci_config cache.ttl_seconds").check()
    assert "60" in res.text
