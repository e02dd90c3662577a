"""Signing with model-signing: any single changed byte in any file fails verification."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loraledger.registry.keys import KeyStore, SigningKey
from loraledger.registry.manifest import Manifest
from loraledger.registry.signing import sign_directory, verify_directory
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
