"""Signing with model-signing: any single changed byte in any file fails verification."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loraledger.registry.keys import KeyStore, SigningKey
from loraledger.registry.manifest import Manifest
from loraledger.registry.signing import sign_directory, sign_files, verify_directory, verify_files
from loraledger.registry.store import sha256_file

from loraledger.errors import VerificationError
from tests.conftest import small_adapter


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, SigningKey]:
    root = tmp_path_factory.mktemp("signed")
    key = KeyStore(root / "keys").create("signer")
    adapter = small_adapter(root / "adapter")
    manifest = sign_directory(adapter, key, root / "bundle.sig")
    assert manifest.files == {p.name: sha256_file(p) for p in adapter.iterdir()}
    return adapter, (root / "bundle.sig").read_bytes(), key


def test_round_trip(signed: tuple[Path, bytes, SigningKey], tmp_path: Path) -> None:
    adapter, bundle, key = signed
    manifest = verify_directory(adapter, bundle, key.public_key_pem, scratch=tmp_path)
    assert manifest == Manifest.from_bundle(bundle)
    assert manifest.serialization["method"] == "files"


def test_wrong_key(signed: tuple[Path, bytes, SigningKey], tmp_path: Path) -> None:
    adapter, bundle, _ = signed
    other = KeyStore(tmp_path / "k").create("other")
    with pytest.raises(VerificationError, match="signature verification failed"):
        verify_directory(adapter, bundle, other.public_key_pem, scratch=tmp_path)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_single_byte_change_breaks_verification(
    signed: tuple[Path, bytes, SigningKey], data: st.DataObject
) -> None:
    adapter, bundle, key = signed
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "adapter"
        shutil.copytree(adapter, copy)
        victim = data.draw(st.sampled_from(sorted(copy.iterdir())))
        content = bytearray(victim.read_bytes())
        offset = data.draw(st.integers(0, len(content) - 1))
        content[offset] ^= data.draw(st.integers(1, 255))
        victim.write_bytes(bytes(content))
        with pytest.raises(VerificationError, match=f"changed: {victim.name}"):
            verify_directory(copy, bundle, key.public_key_pem, scratch=Path(tmp))


@pytest.mark.parametrize("change", ["add", "remove", "rename"])
def test_file_set_changes_break_verification(
    signed: tuple[Path, bytes, SigningKey], tmp_path: Path, change: str
) -> None:
    adapter, bundle, key = signed
    copy = tmp_path / "adapter"
    shutil.copytree(adapter, copy)
    if change == "add":
        (copy / "extra.txt").write_text("x")
    elif change == "remove":
        (copy / "README.md").unlink()
    else:
        (copy / "README.md").rename(copy / "README.txt")
    with pytest.raises(VerificationError, match="do not match the signature \\((extra|missing)"):
        verify_directory(copy, bundle, key.public_key_pem, scratch=tmp_path)


@pytest.mark.parametrize("bundle", [b"", b"{}", b'{"dsseEnvelope": {"payload": "!!"}}'])
def test_garbage_bundles(bundle: bytes) -> None:
    with pytest.raises(VerificationError, match="not a model-signing v1.0 bundle"):
        Manifest.from_bundle(bundle)


# --- files hashed as they were copied: signed and verified without reading them again -----


def test_signing_hashed_files_makes_the_directorys_bundle(
    signed: tuple[Path, bytes, SigningKey], tmp_path: Path
) -> None:
    adapter, bundle, key = signed
    files = {p.name: sha256_file(p) for p in adapter.iterdir()}
    manifest = sign_files(adapter.name, files, key, tmp_path / "files.sig")
    assert manifest == Manifest.from_bundle(bundle)  # subject, digest, files, serialization
    # and model-signing's own hashing of the directory verifies it
    verify_directory(adapter, (tmp_path / "files.sig").read_bytes(), key.public_key_pem,
                     scratch=tmp_path)  # fmt: skip
    assert verify_files(files, bundle, key.public_key_pem) == manifest


@pytest.mark.parametrize("change", ["digest", "add", "remove"])
def test_verifying_hashed_files_names_what_differs(
    signed: tuple[Path, bytes, SigningKey], tmp_path: Path, change: str
) -> None:
    adapter, bundle, key = signed
    files = {p.name: sha256_file(p) for p in adapter.iterdir()}
    if change == "digest":
        files["README.md"] = "0" * 64
    elif change == "add":
        files["extra.txt"] = "0" * 64
    else:
        del files["README.md"]
    expected = {"digest": "changed: README.md", "add": "extra", "remove": "missing"}[change]
    with pytest.raises(VerificationError, match=f"do not match the signature \\({expected}"):
        verify_files(files, bundle, key.public_key_pem)


def test_verifying_hashed_files_with_another_key_fails(
    signed: tuple[Path, bytes, SigningKey], tmp_path: Path
) -> None:
    adapter, bundle, _ = signed
    other = KeyStore(tmp_path / "k").create("other")
    files = {p.name: sha256_file(p) for p in adapter.iterdir()}
    with pytest.raises(VerificationError, match="signature verification failed"):
        verify_files(files, bundle, other.public_key_pem)


# --- verify_files makes model-signing's checks without importing it: the same verdicts ---


def _mutated(bundle: bytes, field: str, offset: int, flip: int) -> bytes:
    document = json.loads(bundle)
    envelope = document["dsseEnvelope"]
    if field in ("payload", "sig"):
        holder = envelope if field == "payload" else envelope["signatures"][0]
        raw = bytearray(base64.b64decode(holder[field]))
        raw[offset % len(raw)] ^= flip
        holder[field] = base64.b64encode(bytes(raw)).decode()
    elif field == "payloadType":
        envelope["payloadType"] = "application/json"
    elif field == "hint":
        document["verificationMaterial"]["publicKey"]["hint"] = "0" * 64
    elif field == "no hint":
        del document["verificationMaterial"]["publicKey"]["hint"]
    return json.dumps(document).encode()


def _verdict(check: Callable[[], object]) -> bool:
    try:
        check()
    except VerificationError:
        return False
    return True


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    field=st.sampled_from(["none", "payload", "sig", "payloadType", "hint", "no hint"]),
    offset=st.integers(0, 10_000),
    flip=st.integers(1, 255),
)
def test_verify_files_agrees_with_model_signing(
    signed: tuple[Path, bytes, SigningKey], field: str, offset: int, flip: int
) -> None:
    adapter, bundle, key = signed
    mutated = _mutated(bundle, field, offset, flip)
    files = {p.name: sha256_file(p) for p in adapter.iterdir()}
    with tempfile.TemporaryDirectory() as tmp:
        theirs = _verdict(
            lambda: verify_directory(adapter, mutated, key.public_key_pem, scratch=Path(tmp))
        )
    ours = _verdict(lambda: verify_files(files, mutated, key.public_key_pem))
    assert ours == theirs
    assert ours == (field in ("none", "no hint"))
