"""Review 1a/1b/1e/1j/1l/1m (V13, V16): the vault against byte flips, deletion, rollback, pasted
entries, a tampered scrypt header, and the leftovers of interrupted writes and rotations."""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from security_fixtures import FAST_KDF_N, TEST_PASSPHRASE

from sci_ext.core.errors import SecurityError
from sci_ext.core.security import Vault, masterkey

REPO = Path(__file__).resolve().parents[2]
KDF = (FAST_KDF_N, 8, 1)
VALUES = {"OPENAI_API_KEY": "sk-test-0123456789abcdef", "HF_TOKEN": "hf_abcdefghijklmnop", "DB_PASSWORD": "pw-42-xyz"}


def _make(tmp_path: Path, source: str) -> Vault:
    v = Vault(tmp_path / "v" / "vault.json", kdf=KDF, key_source=source, key_dir=tmp_path / "keys", prompt=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the key-file warning
        for name, value in VALUES.items():
            v.set(name, value)
    return v


def _fresh(v: Vault) -> Vault:
    return Vault(v.path, kdf=KDF, key_source="passphrase", key_dir=v.key_dir, prompt=None)


def _observe(v: Vault) -> tuple[object, ...]:
    """Everything a user can see of the vault (raises on detected tampering)."""
    fresh = _fresh(v)
    fresh.verify()
    return (
        tuple(fresh.names()),
        tuple((i.name, i.created, i.updated) for i in fresh.list()),
        tuple(fresh.get(n) for n in fresh.names()),
    )


@pytest.mark.parametrize("source", ["keyfile", "passphrase"])
def test_byte_flip_at_every_position(fast_vault, tmp_path: Path, monkeypatch, source: str) -> None:
    """Every byte XORed with a random non-zero mask: detected, or a no-op (JSON whitespace); never a silent change."""
    if source == "keyfile":
        monkeypatch.delenv("SCI_EXT_VAULT_PASSPHRASE")
    # the same (passphrase, salt, n, r, p) always derives the same key: cache it so 1000 flips stay fast
    monkeypatch.setattr(masterkey, "derive_scrypt", functools.cache(masterkey.derive_scrypt))
    v = _make(tmp_path, source)
    baseline = _observe(v)
    original = v.path.read_bytes()
    state = v.state_path.read_bytes()
    rng = random.Random(13)
    tried = detected = benign = changed = 0
    for position in range(len(original)):
        data = bytearray(original)
        data[position] ^= rng.randrange(1, 256)
        v.path.write_bytes(bytes(data))
        tried += 1
        try:
            seen = _observe(v)
        except (SecurityError, ValueError, KeyError):
            detected += 1
        else:
            if seen == baseline:
                benign += 1
            else:
                changed += 1
        v.state_path.write_bytes(state)
    v.path.write_bytes(original)
    print(f"vault byte flips ({source}): {tried} tried, {detected} detected, {benign} no-op, {changed} changed")
    assert changed == 0
    assert tried == len(original) and detected + benign == tried
    assert benign <= tried // 50  # whitespace only


def test_deleted_entry_is_detected(fast_vault, tmp_path: Path) -> None:
    v = _make(tmp_path, "passphrase")
    doc = json.loads(v.path.read_text())
    del doc["secrets"]["HF_TOKEN"]
    v.path.write_text(json.dumps(doc, indent=1))
    before = v.path.read_bytes()
    with pytest.raises(SecurityError, match=r"list of secrets does not match .*removed: HF_TOKEN.*nothing was changed"):
        _fresh(v).get("OPENAI_API_KEY")
    with pytest.raises(SecurityError, match="removed: HF_TOKEN"):
        _fresh(v).set("NEW", "new-value-1234")
    assert v.path.read_bytes() == before


def test_rolled_back_vault_is_refused(fast_vault, tmp_path: Path) -> None:
    v = _make(tmp_path, "passphrase")
    old = v.path.read_bytes()
    v.set("ROTATED_LATER", "value-2")
    v.delete("DB_PASSWORD")
    v.path.write_bytes(old)  # the whole file rolled back to a consistent older copy
    with pytest.raises(SecurityError, match=r"older than generation .* rolled back .* delete .*\.state") as err:
        _fresh(v).get("DB_PASSWORD")
    assert "\n" not in str(err.value) and "pw-42-xyz" not in str(err.value)
    with pytest.raises(SecurityError, match="rolled back"):
        _fresh(v).set("X", "value-3333")
    assert v.path.read_bytes() == old
    v.state_path.unlink()  # restored on purpose: the refusal said how to accept it
    assert _fresh(v).get("DB_PASSWORD") == "pw-42-xyz"


def test_rollback_across_a_rotation_is_refused(fast_vault, tmp_path: Path) -> None:
    v = _make(tmp_path, "passphrase")
    old = v.path.read_bytes()
    v.rotate()
    v.path.write_bytes(old)
    with pytest.raises(SecurityError, match="rolled back"):
        _fresh(v).get("HF_TOKEN")


def test_older_entry_pasted_back_is_detected(fast_vault, tmp_path: Path) -> None:
    v = _make(tmp_path, "passphrase")
    old_entry = json.loads(v.path.read_text())["secrets"]["OPENAI_API_KEY"]
    v.set("OPENAI_API_KEY", "sk-new-value-after-rotation-at-the-provider")
    doc = json.loads(v.path.read_text())
    doc["secrets"]["OPENAI_API_KEY"] = old_entry  # decrypts fine (same vault, same name): AEAD alone accepts it
    v.path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(SecurityError, match=r"secret 'OPENAI_API_KEY' .*older entry was pasted back"):
        _fresh(v).get("OPENAI_API_KEY")
    assert _fresh(v).get("HF_TOKEN") == VALUES["HF_TOKEN"]  # the other entries stay readable


def test_edited_times_are_detected(fast_vault, tmp_path: Path) -> None:
    v = _make(tmp_path, "passphrase")
    doc = json.loads(v.path.read_text())
    doc["secrets"]["HF_TOKEN"]["created"] = 1.0
    v.path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(SecurityError, match="its entry or its times"):
        _fresh(v).verify()


def test_vault_without_manifest_is_accepted_once_then_upgraded(fast_vault, tmp_path: Path) -> None:
    v = _make(tmp_path, "passphrase")
    doc = json.loads(v.path.read_text())
    for field in ("manifest", "generation"):
        doc.pop(field)
    v.path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(SecurityError, match="has no manifest but generation"):
        _fresh(v).get("HF_TOKEN")  # stripping the manifest after one was seen is tampering
    v.state_path.unlink()  # a vault written by an older sci_ext: no generation seen yet
    fresh = _fresh(v)
    assert fresh.get("HF_TOKEN") == VALUES["HF_TOKEN"]
    fresh.set("UPGRADED", "value-9999")
    assert "manifest" in json.loads(v.path.read_text())
    assert _fresh(v).verify() == 4


@pytest.mark.parametrize(("n", "r", "p"), [(2**23, 8, 1), (2**22, 64, 1), (2**14, 65, 1), (2**14, 8, 17)])
def test_tampered_scrypt_parameters_are_refused_before_deriving(
    fast_vault, tmp_path: Path, monkeypatch, n: int, r: int, p: int
) -> None:
    v = _make(tmp_path, "passphrase")
    doc = json.loads(v.path.read_text())
    doc["key"].update(n=n, r=r, p=p)
    v.path.write_text(json.dumps(doc, indent=1))
    calls = []
    monkeypatch.setattr(masterkey, "derive_scrypt", lambda *a: calls.append(a) or b"\0" * 32)
    with pytest.raises(SecurityError, match=r"asks for scrypt .*damaged or tampered"):
        _fresh(v).get("HF_TOKEN")
    assert calls == []


CRASH = textwrap.dedent(
    """
    import os, signal, sys, warnings
    warnings.simplefilter("ignore")
    from sci_ext.core.security import Vault, vault as vault_module
    v = Vault(sys.argv[1], kdf=({n}, 8, 1), key_source=sys.argv[4], key_dir=sys.argv[5])
    v.unlock()
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    if sys.argv[3] == "rename":
        vault_module._replace = die            # the new key and the temp copy exist; the old vault is in place
    else:
        vault_module.discard_master_key = die  # the new vault is in place; the old key is still there
    if sys.argv[2] == "rotate":
        v.rotate()
    else:
        v.set("NEW_SECRET", "new-value-123456")
    """
).format(n=FAST_KDF_N)


def _crash(v: Vault, action: str, where: str, source: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if source == "passphrase":
        env["SCI_EXT_VAULT_PASSPHRASE"] = TEST_PASSPHRASE
    else:
        env.pop("SCI_EXT_VAULT_PASSPHRASE", None)
    args = [sys.executable, "-c", CRASH, str(v.path), action, where, source, str(v.key_dir)]
    return subprocess.run(args, env=env, timeout=60).returncode


def _key_files(v: Vault) -> list[str]:
    return sorted(p.name for p in v.key_dir.glob("vault-*.key"))


def _temp_copies(v: Vault) -> list[str]:
    return sorted(p.name for p in v.path.parent.glob(".vault.json.*.tmp"))


@pytest.mark.parametrize("where", ["rename", "discard"])
def test_interrupted_key_file_rotation_is_cleaned_up_at_the_next_unlock(
    fast_vault, tmp_path: Path, monkeypatch, where: str
) -> None:
    monkeypatch.delenv("SCI_EXT_VAULT_PASSPHRASE")
    v = _make(tmp_path, "keyfile")
    assert len(_key_files(v)) == 1
    for _ in range(3):
        assert _crash(v, "rotate", where, "keyfile") == -signal.SIGKILL
    left = _key_files(v)
    assert len(left) >= 2  # what the crashes left behind
    if where == "rename":
        assert _temp_copies(v)
    fresh = Vault(v.path, kdf=KDF, key_source="keyfile", key_dir=v.key_dir, prompt=None)
    assert fresh.get("OPENAI_API_KEY") == VALUES["OPENAI_API_KEY"]
    in_use = Path(json.loads(v.path.read_text())["key"]["path"]).name
    assert _key_files(v) == [in_use]
    assert _temp_copies(v) == []
    assert json.loads(v.state_path.read_text())["pending"] == []


def test_interrupted_set_leaves_no_temp_copy_after_the_next_unlock(fast_vault, tmp_path: Path) -> None:
    v = _make(tmp_path, "passphrase")
    for _ in range(3):
        assert _crash(v, "set", "rename", "passphrase") == -signal.SIGKILL
    assert len(_temp_copies(v)) == 1  # each crashed process's own unlock removed its predecessor's copy
    assert _fresh(v).get("HF_TOKEN") == VALUES["HF_TOKEN"]
    assert _temp_copies(v) == []


def test_state_file_is_private_and_outside_the_vault_dir(fast_vault, tmp_path: Path) -> None:
    v = _make(tmp_path, "passphrase")
    assert v.state_path.parent == v.key_dir != v.path.parent
    assert oct(v.state_path.stat().st_mode & 0o777) == "0o600"
    state = json.loads(v.state_path.read_text())
    assert state["generation"] == json.loads(v.path.read_text())["generation"] == 4  # create + 3 sets
    assert not any(value in v.state_path.read_text() for value in VALUES.values())
    shutil.copy(v.state_path, tmp_path / "state.bak")


def test_non_canonical_base64_of_an_entry_is_refused(fast_vault, tmp_path: Path) -> None:
    """1c: a tag re-encoded with different unused low bits decodes to the same bytes; the manifest digest sees it."""
    import base64

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    v = _make(tmp_path, "passphrase")
    doc = json.loads(v.path.read_text())
    tag = doc["secrets"]["HF_TOKEN"]["tag"]
    assert tag.endswith("==")  # 16 bytes: the last data character carries 4 unused bits
    index = alphabet.index(tag[-3])
    twin = tag[:-3] + alphabet[index ^ 0b0001] + "=="
    assert base64.b64decode(twin) == base64.b64decode(tag) and twin != tag
    doc["secrets"]["HF_TOKEN"]["tag"] = twin
    v.path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(SecurityError, match="does not match the authenticated manifest"):
        _fresh(v).get("HF_TOKEN")
