"""The vault unlocks where the README says it does: in the first cell after a restart.

Before: ``getpass.getpass`` was captured when ``core/security/masterkey.py`` was imported;
imported during a cell (the first one) that was ipykernel's per-cell getpass, so the
kernel was taken for "no terminal" and ``%sci_secret export`` failed with
``VaultLockedError`` without asking.  A real kernel here, and a real frontend's answer
to its ``input_request`` on the stdin channel.
"""

from __future__ import annotations

import queue
import time
from typing import Any

from kernel_harness import KernelSession

PASSPHRASE = "correct horse battery staple"


def run_answering(session: KernelSession, code: str, answer: str, timeout: float = 120) -> dict[str, Any]:
    """Run ``code`` with stdin allowed; answer every prompt with ``answer``."""
    kc = session.kc
    msg_id = kc.execute(code, store_history=True, allow_stdin=True)
    prompts: list[str] = []
    reply = None
    deadline = time.monotonic() + timeout
    while reply is None and time.monotonic() < deadline:
        try:
            request = kc.get_stdin_msg(timeout=0.2)
            prompts.append(request["content"]["prompt"])
            kc.input(answer)
        except queue.Empty:
            pass
        try:
            msg = kc.get_shell_msg(timeout=0.05)
            if msg["parent_header"].get("msg_id") == msg_id:
                reply = msg["content"]
        except queue.Empty:
            pass
    assert reply is not None, "no execute reply"
    out = ""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=5)
        except queue.Empty:
            break
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out += msg["content"]["text"]
        elif msg["msg_type"] == "error":
            out += "\n".join(msg["content"]["traceback"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return {"reply": reply, "prompts": prompts, "output": out}


def make_vault(kernel_factory) -> None:  # type: ignore[no-untyped-def]
    """A passphrase vault holding DEMO_TOKEN, made by another kernel (the new one is a restart)."""
    first = kernel_factory(env={"SCI_EXT_VAULT_PASSPHRASE": PASSPHRASE})
    first.run("%sci_config security.key_source=passphrase").check()
    first.run(
        "from sci_ext.core.security import get_security_manager\n"
        "get_security_manager().set_secret('DEMO_TOKEN', 'tok-1234567890abcdef')"
    ).check()


def test_first_cell_prompts_and_exports(kernel_factory) -> None:
    make_vault(kernel_factory)
    fresh = kernel_factory(load_extension=False)  # nothing imported yet: the README's first cell
    result = run_answering(fresh, "%load_ext sci_ext\n%sci_secret export DEMO_TOKEN", PASSPHRASE)
    assert result["reply"]["status"] == "ok", result
    assert len(result["prompts"]) == 1 and "passphrase" in result["prompts"][0].lower(), result["prompts"]
    assert "exported DEMO_TOKEN" in result["output"] and "tok-1234567890abcdef" not in result["output"]
    check = fresh.run("import os\nprint(len(os.environ['DEMO_TOKEN']))")
    assert check.stdout.strip() == "20"


def test_unlock_verb_prompts_once_then_export_needs_no_prompt(kernel_factory) -> None:
    make_vault(kernel_factory)
    fresh = kernel_factory(load_extension=False)
    result = run_answering(fresh, "%load_ext sci_ext\n%sci_secret unlock", PASSPHRASE)
    assert result["reply"]["status"] == "ok" and "vault unlocked" in result["output"], result
    assert len(result["prompts"]) == 1
    again = run_answering(fresh, "%sci_secret export DEMO_TOKEN", "not asked")
    assert again["prompts"] == [] and "exported DEMO_TOKEN" in again["output"], again
    wrong = kernel_factory(load_extension=False)
    bad = run_answering(wrong, "%load_ext sci_ext\n%sci_secret unlock", "wrong passphrase")
    assert bad["reply"]["status"] == "error" and "wrong passphrase" in bad["output"], bad
    usage = wrong.run("%sci_secret unlock NAME")
    assert usage.error is not None and "takes no names" in usage.stderr + str(usage.error), usage.error
