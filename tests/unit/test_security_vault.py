"""The AES-256-GCM vault: round trips, tampering, permissions, crashes, concurrency, rotation."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from security_fixtures import FAST_KDF_N, TEST_PASSPHRASE

from sci_ext.core.errors import AuthenticationError, SecurityError, VaultLockedError
from sci_ext.core.security import Vault, get_security_manager, masterkey

REPO = Path(__file__).resolve().parents[2]
KDF = (FAST_KDF_N, 8, 1)


@pytest.fixture
def vault(fast_vault, tmp_path: Path) -> Vault:
    v = Vault(tmp_path / "v" / "vault.json", kdf=KDF, key_source="passphrase", prompt=None)
    v.set("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    v.set("HF_TOKEN", "hf_abcdefghijklmnop")
    return v


def fresh(v: Vault, **kw) -> Vault:
    """A new Vault object on the same file (no cached key or document)."""
    return Vault(v.path, kdf=KDF, key_source=kw.pop("key_source", "passphrase"), prompt=kw.pop("prompt", None), **kw)


def test_round_trip_and_file_modes(vault: Vault) -> None:
    assert fresh(vault).get("OPENAI_API_KEY") == "sk-test-0123456789abcdef"
    assert vault.names() == ["HF_TOKEN", "OPENAI_API_KEY"]
    assert oct(vault.path.stat().st_mode & 0o777) == "0o600"
    assert oct(vault.path.parent.stat().st_mode & 0o777) == "0o700"
    raw = vault.path.read_text()
    assert "sk-test-0123456789abcdef" not in raw and "hf_abcdefghijklmnop" not in raw
    doc = json.loads(raw)
    assert doc["key"]["source"] == "passphrase" and doc["key"]["n"] == FAST_KDF_N
    nonces = [e["nonce"] for e in doc["secrets"].values()] + [doc["check"]["nonce"]]
    assert len(set(nonces)) == len(nonces)
    assert all(len(base64.b64decode(n)) == 12 for n in nonces)


def test_same_value_twice_gets_fresh_nonces(vault: Vault) -> None:
    vault.set("A", "same-value-here")
    first = json.loads(vault.path.read_text())["secrets"]["A"]
    vault.set("A", "same-value-here")
    second = json.loads(vault.path.read_text())["secrets"]["A"]
    assert first["nonce"] != second["nonce"] and first["ciphertext"] != second["ciphertext"]
    assert second["created"] == first["created"]


def _flip(text_b64: str) -> str:
    raw = bytearray(base64.b64decode(text_b64))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("region", ["nonce", "ciphertext", "tag"])
def test_flipped_byte_in_an_entry_is_a_clear_error_and_nothing_is_overwritten(vault: Vault, region: str) -> None:
    doc = json.loads(vault.path.read_text())
    doc["secrets"]["OPENAI_API_KEY"][region] = _flip(doc["secrets"]["OPENAI_API_KEY"][region])
    vault.path.write_text(json.dumps(doc))
    before = vault.path.read_bytes()
    v = fresh(vault)
    with pytest.raises(
        SecurityError,
        match=r"secret .OPENAI_API_KEY. (failed authentication: the file was modified|\(its entry or its times\) does not match)",
    ):
        v.get("OPENAI_API_KEY")
    assert v.get("HF_TOKEN") == "hf_abcdefghijklmnop"  # the other entry is intact
    assert vault.path.read_bytes() == before


@pytest.mark.parametrize("field", ["salt", "vault_id", "n"])
def test_flipped_header_is_detected_at_unlock(vault: Vault, field: str) -> None:
    doc = json.loads(vault.path.read_text())
    if field == "salt":
        doc["key"]["salt"] = _flip(doc["key"]["salt"])
    elif field == "vault_id":
        doc["vault_id"] = ("0" if doc["vault_id"][0] != "0" else "1") + doc["vault_id"][1:]
    else:
        doc["key"]["n"] = FAST_KDF_N * 2
    vault.path.write_text(json.dumps(doc))
    before = vault.path.read_bytes()
    with pytest.raises(
        AuthenticationError, match="wrong passphrase, or the vault header was modified; nothing was changed"
    ):
        fresh(vault).get("HF_TOKEN")
    with pytest.raises(AuthenticationError):
        fresh(vault).set("NEW", "value-1234")
    assert vault.path.read_bytes() == before


def test_raw_byte_flip_in_the_file_is_a_clear_error(vault: Vault) -> None:
    raw = bytearray(vault.path.read_bytes())
    raw[3] ^= 0xFF  # inside the JSON syntax
    vault.path.write_bytes(bytes(raw))
    with pytest.raises(SecurityError, match="damaged|not a sci_ext vault"):
        fresh(vault).get("HF_TOKEN")


def test_swapped_ciphertexts_are_detected_by_the_associated_data(vault: Vault) -> None:
    vault.set("B_KEY", "second-secret-value")
    doc = json.loads(vault.path.read_text())
    a, b = doc["secrets"]["OPENAI_API_KEY"], doc["secrets"]["B_KEY"]
    doc["secrets"]["OPENAI_API_KEY"], doc["secrets"]["B_KEY"] = b, a
    vault.path.write_text(json.dumps(doc))
    v = fresh(vault)
    for name in ("OPENAI_API_KEY", "B_KEY"):
        with pytest.raises(SecurityError, match="failed authentication|does not match the authenticated manifest"):
            v.get(name)


def test_wrong_passphrase_is_a_clear_error_and_changes_nothing(vault: Vault, monkeypatch) -> None:
    monkeypatch.setenv("SCI_EXT_VAULT_PASSPHRASE", "not the passphrase")
    before = vault.path.read_bytes()
    with pytest.raises(AuthenticationError, match="cannot unlock .*wrong passphrase"):
        fresh(vault).get("HF_TOKEN")
    with pytest.raises(AuthenticationError):
        fresh(vault).set("X", "yyyy-zzzz")
    assert vault.path.read_bytes() == before


def test_no_passphrase_and_no_prompt_is_locked(vault: Vault, monkeypatch) -> None:
    monkeypatch.delenv("SCI_EXT_VAULT_PASSPHRASE")
    with pytest.raises(VaultLockedError, match="SCI_EXT_VAULT_PASSPHRASE"):
        fresh(vault).get("HF_TOKEN")


def test_group_readable_vault_is_refused_with_the_fix(vault: Vault) -> None:
    vault.path.chmod(0o644)
    with pytest.raises(SecurityError, match=r"mode 0644 .*Fix: chmod 600"):
        fresh(vault).get("HF_TOKEN")
    with pytest.raises(SecurityError, match="mode 0644"):
        vault.get("HF_TOKEN")  # the same object notices the change too
    vault.path.chmod(0o600)
    vault.path.parent.chmod(0o755)
    with pytest.raises(SecurityError, match=r"directory .* mode 0755 .*chmod 700"):
        fresh(vault).get("HF_TOKEN")
    vault.path.parent.chmod(0o700)
    assert fresh(vault).get("HF_TOKEN") == "hf_abcdefghijklmnop"


def test_key_is_cached_until_lock(vault: Vault, monkeypatch) -> None:
    v = fresh(vault)
    assert v.get("HF_TOKEN") == "hf_abcdefghijklmnop"
    calls = []
    real = masterkey.derive_scrypt
    monkeypatch.setattr(masterkey, "derive_scrypt", lambda *a: calls.append(1) or real(*a))
    for _ in range(5):
        v.get("HF_TOKEN")
    assert calls == [] and v.unlocked
    v.lock()
    assert not v.unlocked
    v.get("HF_TOKEN")
    assert calls == [1]


def test_invalid_names_and_values(vault: Vault) -> None:
    with pytest.raises(SecurityError, match="invalid secret name"):
        vault.set("bad name", "value-1234")
    with pytest.raises(SecurityError, match="non-empty string"):
        vault.set("EMPTY", "")
    with pytest.raises(KeyError, match="no secret named 'MISSING'"):
        vault.get("MISSING")
    with pytest.raises(KeyError):
        vault.delete("MISSING")


def test_kdf_cost_below_minimum_is_refused(fast_vault) -> None:
    from sci_ext.core.config import get_config_manager
    from sci_ext.core.errors import ConfigError

    with pytest.raises(ConfigError):
        get_config_manager().set("security.kdf_n", 2**13)
    assert get_config_manager().config.security.kdf_n == FAST_KDF_N
    assert masterkey.derive_scrypt("x", b"s" * 16, FAST_KDF_N, 8, 1) != masterkey.derive_scrypt(
        "y", b"s" * 16, FAST_KDF_N, 8, 1
    )
    with pytest.raises(SecurityError, match="power of two from 2\\*\\*14"):
        masterkey.derive_scrypt("x", b"s" * 16, 2**13, 8, 1)


def test_default_kdf_cost_is_2_17(sci_env) -> None:
    from sci_ext.core.config import get_config

    assert get_config().security.kdf_n == 2**17


# ------------------------------------------------------------------- master keys
def test_getpass_prompt_path(fast_vault, tmp_path: Path, monkeypatch) -> None:
    """The passphrase prompt (getpass patched: the only mock besides the keyring)."""
    monkeypatch.delenv("SCI_EXT_VAULT_PASSPHRASE")
    asked = []

    def fake_getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return "typed passphrase"

    monkeypatch.setattr(masterkey.getpass, "getpass", fake_getpass)  # counts as "in a kernel": someone can answer
    v = Vault(tmp_path / "p" / "vault.json", kdf=KDF, prompt=masterkey.default_prompt)
    v.set("K", "value-from-prompt")
    assert asked == ["New vault passphrase: ", "Repeat the passphrase: "]
    v2 = Vault(v.path, kdf=KDF, prompt=masterkey.default_prompt)
    assert v2.get("K") == "value-from-prompt"
    assert asked[-1] == "Vault passphrase: "
    monkeypatch.setattr(masterkey.getpass, "getpass", lambda prompt="": "wrong one")
    with pytest.raises(AuthenticationError):
        Vault(v.path, kdf=KDF, prompt=masterkey.default_prompt).get("K")


def test_prompt_mismatch_creates_nothing(fast_vault, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SCI_EXT_VAULT_PASSPHRASE")
    answers = iter(["one", "two"])
    v = Vault(tmp_path / "m" / "vault.json", kdf=KDF, prompt=lambda p: next(answers))
    with pytest.raises(AuthenticationError, match="differ"):
        v.set("K", "value-1234")
    assert not v.path.exists()


def test_key_file_fallback(fast_vault, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SCI_EXT_VAULT_PASSPHRASE")
    key_dir = tmp_path / "keys"
    v = Vault(tmp_path / "kf" / "vault.json", kdf=KDF, key_dir=key_dir, prompt=None)
    with pytest.warns(UserWarning, match="weakest option"):
        v.set("K", "value-in-keyfile-vault")
    spec = json.loads(v.path.read_text())["key"]
    key_file = Path(spec["path"])
    assert spec["source"] == "keyfile" and key_file.parent == key_dir.resolve()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and oct(key_dir.stat().st_mode & 0o777) == "0o700"
    assert Vault(v.path, kdf=KDF, key_dir=key_dir).get("K") == "value-in-keyfile-vault"
    key_file.chmod(0o644)
    with pytest.raises(SecurityError, match=r"key file .* mode 0644 .*chmod 600"):
        Vault(v.path, kdf=KDF, key_dir=key_dir).get("K")
    key_file.chmod(0o600)
    with pytest.warns(UserWarning):
        v.rotate()
    assert not key_file.exists()  # the old key went once the new vault was durable
    assert Vault(v.path, kdf=KDF, key_dir=key_dir).get("K") == "value-in-keyfile-vault"
    monkeypatch.setenv("SCI_EXT_VAULT_PASSPHRASE", TEST_PASSPHRASE)  # as the warning advises
    v.rotate()
    assert json.loads(v.path.read_text())["key"]["source"] == "passphrase"
    assert [p for p in key_dir.iterdir() if p.suffix != ".state"] == []  # the generation state stays
    assert Vault(v.path, kdf=KDF).get("K") == "value-in-keyfile-vault"


def test_key_file_is_created_exclusively(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir(mode=0o700)
    (key_dir / "vault-abc.key").write_text("planted")
    with pytest.raises(FileExistsError):
        masterkey.new_master_key("abc", tmp_path / "vdir", source="keyfile", kdf=KDF, key_dir=key_dir, prompt=None)
    assert (key_dir / "vault-abc.key").read_text() == "planted"


def test_key_file_inside_the_vault_directory_is_refused(tmp_path: Path) -> None:
    vdir = tmp_path / "vdir"
    with pytest.raises(SecurityError, match="inside the vault's directory"):
        masterkey.new_master_key("abc", vdir, source="keyfile", kdf=KDF, key_dir=vdir / "keys", prompt=None)


def test_os_keyring_is_preferred_when_available(fast_vault, fake_keyring, tmp_path: Path) -> None:
    assert masterkey.keyring_available()
    v = Vault(tmp_path / "kr" / "vault.json", kdf=KDF, prompt=None)
    v.set("K", "value-in-keyring-vault")
    spec = json.loads(v.path.read_text())["key"]
    assert spec["source"] == "keyring"
    assert (masterkey.KEYRING_SERVICE, spec["username"]) in fake_keyring.store
    assert Vault(v.path, kdf=KDF).get("K") == "value-in-keyring-vault"
    v.rotate()
    new_spec = json.loads(v.path.read_text())["key"]
    assert list(fake_keyring.store) == [(masterkey.KEYRING_SERVICE, new_spec["username"])]
    fake_keyring.store.clear()
    with pytest.raises(VaultLockedError, match="missing from the OS keyring"):
        Vault(v.path, kdf=KDF).get("K")


def test_no_real_keyring_here() -> None:
    assert not masterkey.keyring_available()  # the fail backend: sci_ext falls back to a passphrase


# --------------------------------------------------------------------- rotation
def test_rotation_re_encrypts_everything(vault: Vault) -> None:
    old = json.loads(vault.path.read_text())
    vault.rotate()
    new = json.loads(vault.path.read_text())
    assert new["vault_id"] != old["vault_id"] and new["key"]["salt"] != old["key"]["salt"]
    for name in ("OPENAI_API_KEY", "HF_TOKEN"):
        assert new["secrets"][name]["ciphertext"] != old["secrets"][name]["ciphertext"]
    assert fresh(vault).get("OPENAI_API_KEY") == "sk-test-0123456789abcdef"


def test_rotation_to_a_new_passphrase(vault: Vault, monkeypatch) -> None:
    vault.rotate(passphrase="the new passphrase")
    with pytest.raises(AuthenticationError):
        fresh(vault).get("HF_TOKEN")
    monkeypatch.setenv("SCI_EXT_VAULT_PASSPHRASE", "the new passphrase")
    assert fresh(vault).get("HF_TOKEN") == "hf_abcdefghijklmnop"


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from sci_ext.core.security import Vault, vault as vault_module
    v = Vault(sys.argv[1], kdf=({n}, 8, 1), key_source="passphrase")
    v.unlock()
    def die(*args):
        os.kill(os.getpid(), signal.SIGKILL)
    if sys.argv[3] == "rename":
        vault_module._replace = die          # killed after the temp file is durable, before the rename
    else:
        real_fsync = os.fsync
        os.fsync = die                       # killed in the middle of writing the temp file
    if sys.argv[2] == "rotate":
        v.rotate()
    else:
        v.set("NEW_SECRET", "new-value-123456")
    """
).format(n=FAST_KDF_N)


def _crash(path: Path, action: str, where: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCI_EXT_VAULT_PASSPHRASE": TEST_PASSPHRASE}
    return subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(path), action, where], env=env, timeout=60
    ).returncode


@pytest.mark.parametrize("where", ["rename", "write"])
@pytest.mark.parametrize("action", ["set", "rotate"])
def test_killed_mid_write_leaves_the_old_vault(vault: Vault, action: str, where: str) -> None:
    before = vault.path.read_bytes()
    assert _crash(vault.path, action, where) == -9
    assert vault.path.read_bytes() == before
    v = fresh(vault)
    assert v.get("OPENAI_API_KEY") == "sk-test-0123456789abcdef"
    assert "NEW_SECRET" not in v.names()
    v.set("AFTER", "after-crash-value")  # a stale lock or temp file does not block the next write
    assert fresh(vault).get("AFTER") == "after-crash-value"


WRITER = textwrap.dedent(
    """
    import sys
    from sci_ext.core.security import Vault
    v = Vault(sys.argv[1], kdf=({n}, 8, 1), key_source="passphrase")
    for i in range(int(sys.argv[3])):
        v.set(f"{{sys.argv[2]}}_{{i}}", f"value-{{sys.argv[2]}}-{{i}}")
    print("done")
    """
).format(n=FAST_KDF_N)


def test_two_processes_writing_different_secrets_keep_both(vault: Vault) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCI_EXT_VAULT_PASSPHRASE": TEST_PASSPHRASE}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(vault.path), who, "15"], env=env, stdout=subprocess.PIPE, text=True
        )
        for who in ("ALPHA", "BETA")
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip() == "done"
    v = fresh(vault)
    names = v.names()
    for who in ("ALPHA", "BETA"):
        for i in range(15):
            assert f"{who}_{i}" in names
            assert v.get(f"{who}_{i}") == f"value-{who}-{i}"
    assert v.verify() == 32


def test_another_process_rotating_is_picked_up(vault: Vault) -> None:
    v = fresh(vault)
    assert v.get("HF_TOKEN") == "hf_abcdefghijklmnop"
    other = fresh(vault)
    other.rotate()
    assert v.get("HF_TOKEN") == "hf_abcdefghijklmnop"  # re-derives the new key from the same source
    v.set("AFTER_ROTATE", "value-after-rotate")
    assert fresh(vault).get("AFTER_ROTATE") == "value-after-rotate"


def test_manager_uses_config_and_audits(fast_vault) -> None:
    sm = get_security_manager()
    assert sm is get_security_manager()
    sm.set_secret("OPENAI_API_KEY", "sk-manager-0123456789")
    assert sm.get_secret("OPENAI_API_KEY") == "sk-manager-0123456789"
    assert Path(sm.vault.path) == fast_vault["XDG_DATA_HOME"] / "sci_ext" / "vault.json"
    sm.export_secrets(["OPENAI_API_KEY"])
    assert os.environ.pop("OPENAI_API_KEY") == "sk-manager-0123456789"
    with pytest.raises(KeyError):
        sm.export_secrets(["NOPE"])
    with pytest.raises(SecurityError, match="nothing to export"):
        sm.export_secrets([])
    sm.rotate()
    sm.lock()
    sm.delete_secret("OPENAI_API_KEY")
    assert sm.list_secrets() == []
    events = [r["event"] for r in sm.audit_log.records()]
    for event in (
        "vault.create",
        "secret.set",
        "secret.read",
        "secret.export",
        "vault.rotate",
        "vault.lock",
        "secret.delete",
    ):
        assert event in events
    assert sm.verify_audit().ok
    from security_fixtures import scan_for

    assert scan_for("sk-manager-0123456789", fast_vault["XDG_STATE_HOME"], fast_vault["XDG_DATA_HOME"]) == []


def test_redaction_can_be_turned_off(fast_vault) -> None:
    from sci_ext.core.config import get_config_manager
    from sci_ext.core.security import get_redactor

    get_config_manager().set("security.redact_outputs", False)
    sm = get_security_manager()
    sm.set_secret("PLAIN", "shown-as-is-123")
    assert sm.get_secret("PLAIN") == "shown-as-is-123"
    assert get_redactor().redact("shown-as-is-123") == "shown-as-is-123"
    get_config_manager().set("security.redact_outputs", True)
    assert get_security_manager() is not sm  # rebuilt for the new settings
    get_security_manager().get_secret("PLAIN")
    assert get_redactor().redact("shown-as-is-123") == "[REDACTED:PLAIN]"
