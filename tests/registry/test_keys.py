from __future__ import annotations

import stat
from pathlib import Path

import pytest
from loraledger.registry.keys import KeyStore, fingerprint, verify_signature

from loraledger.errors import SigningKeyError


def test_keys_are_private_files(keystore: KeyStore) -> None:
    key = keystore.create("alice")
    mode = stat.S_IMODE(key.path.stat().st_mode)
    assert key.path == keystore.directory / "alice.pem"
    assert mode == 0o600
    assert b"PRIVATE KEY" in key.path.read_bytes()
    assert len(key.fingerprint) == 64 and key.fingerprint == fingerprint(key.public_key_pem)


def test_refuses_to_overwrite(keystore: KeyStore) -> None:
    keystore.create("alice")
    with pytest.raises(SigningKeyError, match="already exists .* --reuse-key"):
        keystore.create("alice")


def test_sign_and_verify(keystore: KeyStore) -> None:
    key = keystore.create("alice")
    signature = key.sign(b"message")
    assert verify_signature(key.public_key_pem, signature, b"message")
    assert not verify_signature(key.public_key_pem, signature, b"messagE")
    other = keystore.create("bob")
    assert not verify_signature(other.public_key_pem, signature, b"message")


def test_passphrase(keystore: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    key = keystore.create("alice", passphrase=b"s3cret")
    assert b"ENCRYPTED" in key.path.read_bytes()
    with pytest.raises(SigningKeyError, match="is encrypted; set LORALEDGER_PASSPHRASE"):
        keystore.load("alice")
    with pytest.raises(SigningKeyError, match="check the passphrase"):
        keystore.load("alice", b"wrong")
    monkeypatch.setenv("LORALEDGER_PASSPHRASE", "s3cret")
    assert keystore.load("alice").fingerprint == key.fingerprint


def test_missing_and_unreadable_keys(keystore: KeyStore, tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="no private key for 'nobody'"):
        keystore.load("nobody")
    keystore.directory.mkdir(parents=True, exist_ok=True)
    keystore.path_for("junk").write_text("not a key")
    keystore.path_for("junk").chmod(0o600)
    with pytest.raises(SigningKeyError, match="cannot read the private key"):
        keystore.load("junk")


def test_rsa_keys_are_refused(keystore: KeyStore) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    keystore.directory.mkdir(parents=True, exist_ok=True)
    keystore.path_for("rsa").write_bytes(pem)
    keystore.path_for("rsa").chmod(0o600)
    with pytest.raises(SigningKeyError, match="not an elliptic-curve key"):
        keystore.load("rsa")


def test_prompt_for_an_encrypted_key(tmp_path: Path) -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "s3cret"

    KeyStore(tmp_path / "k").create("alice", passphrase=b"s3cret")
    key = KeyStore(tmp_path / "k", prompt=prompt).load("alice")
    assert key.passphrase == b"s3cret"
    assert asked == [f"Passphrase for alice's key ({tmp_path / 'k' / 'alice.pem'})"]


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o640, 0o604, 0o660])
def test_a_key_others_can_read_is_refused_with_the_fix(keystore: KeyStore, mode: int) -> None:
    key = keystore.create("alice")
    key.path.chmod(mode)
    with pytest.raises(SigningKeyError, match=f"\\(mode {mode:04o}\\); run `chmod 600 {key.path}`"):
        keystore.load("alice")
    key.path.chmod(0o600)
    assert keystore.load("alice").fingerprint == key.fingerprint


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_key_directory_others_can_write_is_refused(keystore: KeyStore, mode: int) -> None:
    keystore.create("alice")
    keystore.directory.chmod(mode)
    with pytest.raises(
        SigningKeyError, match=f"writable by others \\(mode {mode:04o}\\).*chmod 700"
    ):
        keystore.load("alice")
    keystore.directory.chmod(0o755)  # readable by others is fine, as for ~/.ssh
    keystore.load("alice")
