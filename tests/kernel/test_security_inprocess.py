"""The kernel-side code in this process (kernels' own coverage is not collected).

`SessionRedactor` is driven through a real jupyter_client Session over a real
in-process ZeroMQ socket pair; `%sci_secret` through a real InteractiveShell
(getpass patched: in-process nobody can type into it).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from typing import Any

import pytest

from sci_ext.core.security import Redactor

SECRET = "sk-inproc-0123456789abcdef"


@pytest.fixture
def wire() -> Iterator[tuple[Any, Any, Any]]:
    import zmq
    from jupyter_client.session import Session

    ctx = zmq.Context()
    out, inp = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    out.bind("inproc://sci-redact")
    inp.connect("inproc://sci-redact")
    session = Session(key=b"test-key")
    yield session, out, inp
    out.close(0)
    inp.close(0)
    ctx.term()


def received(session: Any, sock: Any) -> list[dict[str, Any]]:
    import zmq

    msgs = []
    while sock.poll(100, zmq.POLLIN):
        _, msg = session.recv(sock, mode=0)
        msgs.append(msg)
    return msgs


def test_session_redactor_streams_displays_errors(wire) -> None:
    from sci_ext.kernel.redaction import SessionRedactor

    session, out, inp = wire
    redactor = Redactor()
    redactor.add("K", SECRET)
    hook = SessionRedactor(session, redactor)
    hook.install()
    parent = session.msg("execute_request", {"code": "x"})
    session.send(out, "stream", {"name": "stdout", "text": "a " + SECRET[:6]}, parent=parent)
    session.send(out, "stream", {"name": "stdout", "text": SECRET[6:] + " b sk-"}, parent=parent)
    session.send(out, "display_data", {"data": {"text/html": f"<b>{SECRET}</b>"}, "metadata": {}}, parent=parent)
    msg = session.msg("error", {"ename": "E", "evalue": SECRET, "traceback": [f"line {SECRET}"]}, parent=parent)
    session.send(out, msg)
    session.send(out, "status", {"execution_state": "idle"}, parent=parent)
    msgs = received(session, inp)
    kinds = [m["msg_type"] for m in msgs]
    assert kinds == ["stream", "stream", "stream", "display_data", "error", "status"]
    texts = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
    assert texts == "a [REDACTED:K] b sk-"  # the held "sk-" went out before the display
    assert all(m["parent_header"]["msg_id"] == parent["header"]["msg_id"] for m in msgs)
    assert SECRET not in repr([m["content"] for m in msgs])
    assert hook.redacted_messages >= 3
    hook.uninstall()
    assert "send" not in session.__dict__


def test_session_redactor_passes_through_without_secrets(wire) -> None:
    from sci_ext.kernel.redaction import SessionRedactor

    session, out, inp = wire
    hook = SessionRedactor(session, Redactor())
    hook.install()
    session.send(out, "stream", {"name": "stdout", "text": SECRET})
    assert received(session, inp)[0]["content"]["text"] == SECRET
    hook.uninstall()


@pytest.fixture
def shell(fast_vault) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    # Clear the singleton only when this fixture made it: another module's test shell may be
    # the instance (a worker runs modules in any order), and clearing it breaks that module.
    from sci_ext.kernel import KernelState

    created = not InteractiveShell.initialized()
    ip = InteractiveShell.instance()
    loaded = KernelState.get(ip).loaded
    ip.run_line_magic("load_ext", "sci_ext")
    yield ip
    if not loaded:
        ip.run_line_magic("unload_ext", "sci_ext")
    if created:
        InteractiveShell.clear_instance()


def test_sci_secret_in_process(shell, monkeypatch, capsys) -> None:
    from IPython.core.error import StdinNotImplementedError, UsageError

    monkeypatch.setattr(getpass, "getpass", lambda prompt="": SECRET)
    shell.run_line_magic("sci_secret", "set INPROC_KEY")
    shell.run_line_magic("sci_secret", "list")
    shell.run_line_magic("sci_secret", "export INPROC_KEY")
    shell.run_line_magic("sci_secret", "export --all")
    shell.run_line_magic("sci_secret", "rotate")
    shell.run_line_magic("sci_secret", "lock")
    shell.run_line_magic("sci_secret", "delete INPROC_KEY")
    for bad in ("", "frob", "set", "list X", "export", "export A --all", "lock --all", "delete NOPE"):
        with pytest.raises(UsageError):
            shell.run_line_magic("sci_secret", bad)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "")
    with pytest.raises(UsageError, match="empty value"):
        shell.run_line_magic("sci_secret", "set EMPTY")

    def no_stdin(prompt: str = "") -> str:
        raise StdinNotImplementedError("no frontend")

    monkeypatch.setattr(getpass, "getpass", no_stdin)
    with pytest.raises(UsageError, match="cannot prompt"):
        shell.run_line_magic("sci_secret", "set OTHER")
    import os

    os.environ.pop("INPROC_KEY", None)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert "stored INPROC_KEY" in out.out and "vault locked" in out.out


def test_tail_of_an_earlier_cell_goes_out_at_the_next_cells_idle(wire) -> None:
    from sci_ext.kernel.redaction import SessionRedactor

    session, out, inp = wire
    redactor = Redactor()
    redactor.add("K", SECRET)
    hook = SessionRedactor(session, redactor)
    hook.install()
    old = session.msg("execute_request", {"code": "thread"})
    new = session.msg("execute_request", {"code": "next"})
    session.send(out, "status", {"execution_state": "busy"}, parent=old)
    session.send(out, "status", {"execution_state": "idle"}, parent=old)
    session.send(out, "stream", {"name": "stderr", "text": "background sk-"}, parent=old)
    session.send(out, "status", {"execution_state": "busy"}, parent=new)
    session.send(out, "status", {"execution_state": "idle"}, parent=new)
    msgs = received(session, inp)
    assert [(m["msg_type"], m["content"].get("text")) for m in msgs] == [
        ("status", None),
        ("status", None),
        ("stream", "background "),
        ("status", None),
        ("stream", "sk-"),
        ("status", None),
    ]
    assert msgs[4]["parent_header"]["msg_id"] == old["header"]["msg_id"]
    assert hook._parents == {}
    hook.uninstall()


def test_control_channel_status_does_not_release_a_held_tail(wire) -> None:
    """V6: kernel_info/interrupt/usage requests report busy/idle while a cell runs; the tail stays held."""
    from sci_ext.kernel.redaction import SessionRedactor

    session, out, inp = wire
    redactor = Redactor()
    redactor.add("K", SECRET)
    hook = SessionRedactor(session, redactor)
    hook.install()
    cell = session.msg("execute_request", {"code": "cell"})
    session.send(out, "status", {"execution_state": "busy"}, parent=cell)
    session.send(out, "stream", {"name": "stdout", "text": SECRET[:5]}, parent=cell)
    for kind in ("kernel_info_request", "interrupt_request", "debug_request", "usage_request"):
        ping = session.msg(kind, {})
        session.send(out, "status", {"execution_state": "busy"}, parent=ping)
        session.send(out, "status", {"execution_state": "idle"}, parent=ping)
    session.send(out, "stream", {"name": "stdout", "text": SECRET[5:] + "\n"}, parent=cell)
    session.send(out, "status", {"execution_state": "idle"}, parent=cell)
    texts = [m["content"]["text"] for m in received(session, inp) if m["msg_type"] == "stream"]
    assert texts == ["[REDACTED:K]\n"]
    hook.uninstall()


def test_widget_buffers_are_redacted_as_bytes(wire) -> None:
    """V15: a comm message's binary buffer holding a value is redacted (bytes replace)."""
    from sci_ext.kernel.redaction import SessionRedactor

    session, out, inp = wire
    redactor = Redactor()
    redactor.add("K", SECRET)
    hook = SessionRedactor(session, redactor)
    hook.install()
    parent = session.msg("comm_msg", {})
    session.send(out, "comm_msg", {"comm_id": "x", "data": {}}, parent=parent, buffers=[b"img" + SECRET.encode()])
    msg = session.send(out, "comm_msg", {"comm_id": "x", "data": {}}, parent=parent, buffers=[memoryview(b"clean")])
    got = received(session, inp)
    assert [bytes(b) for b in got[0]["buffers"]] == [b"img[REDACTED:K]"]
    assert [bytes(b) for b in got[1]["buffers"]] == [b"clean"] and msg is not None
    hook.uninstall()
