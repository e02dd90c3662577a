"""Registering, reading, verifying and fetching adapter versions, and the tamper matrix."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from loraledger.registry import AdapterVersion, Registry, Role
from loraledger.registry.manifest import Manifest
from loraledger.registry.store import sha256_file

from loraledger.errors import (
    InputError,
    NotFound,
    PermissionDenied,
    SigningKeyError,
    UsageError,
    VerificationError,
)
from tests.conftest import ADMIN, AUDITOR, ENGINEER, REVIEWER, small_adapter
from tests.registry.helpers import snapshot, sql


def test_register_records_a_signed_version(registry: Registry, adapter_dir: Path) -> None:
    version = registry.adapters.register(adapter_dir, "bank-support", actor=ENGINEER)
    assert version.ref == "bank-support@v1"
    assert version.signer == ENGINEER and version.created_by == ENGINEER
    assert version.peft_type == "LORA"
    assert version.base_model_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert {f.path: f.sha256 for f in version.files} == {
        p.name: sha256_file(p) for p in adapter_dir.iterdir()
    }
    manifest = Manifest.from_bundle(registry.adapters.signature(version.ref))
    assert manifest.digest == version.digest
    assert manifest.files == {f.path: f.sha256 for f in version.files}
    for entry in version.files:
        assert (
            registry.store.path_of(entry.sha256).read_bytes()
            == (adapter_dir / entry.path).read_bytes()
        )
    event = registry.audit_events()[-1]
    assert (event.actor, event.action, event.subject) == (
        ENGINEER,
        "adapter.register",
        "adapter:bank-support@v1",
    )
    assert event.payload["digest"] == version.digest
    registry.verify_audit()


def test_versions_count_up_and_never_change(registry: Registry, tmp_path: Path) -> None:
    first = registry.adapters.register(small_adapter(tmp_path / "a", 1), "x", actor=ENGINEER)
    second = registry.adapters.register(small_adapter(tmp_path / "b", 2), "x", actor=ADMIN)
    assert (first.version, second.version) == (1, 2)
    assert registry.adapters.get("x@v1") == first
    assert registry.adapters.get("x").ref == "x@v2"
    assert registry.adapters.get("x@latest").ref == "x@v2"
    assert [v.ref for v in registry.adapters.list()] == ["x@v1", "x@v2"]
    assert [v.ref for v in registry.adapters.list("x")] == ["x@v1", "x@v2"]


def test_identical_files_are_stored_once(registry: Registry, adapter_dir: Path) -> None:
    registry.adapters.register(adapter_dir, "a", actor=ENGINEER)
    before = len(list(registry.store.digests()))
    registry.adapters.register(adapter_dir, "b", actor=ENGINEER)
    assert len(list(registry.store.digests())) == before + 1  # only the new bundle


def test_verify_and_fetch(
    registry: Registry, registered: AdapterVersion, tmp_path: Path, adapter_dir: Path
) -> None:
    report = registry.adapters.verify(registered.ref)
    assert report.files_verified == 3 and report.digest == registered.digest
    dest = tmp_path / "fetched"
    registry.adapters.fetch(registered.ref, dest)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == {
        p.name: p.read_bytes() for p in adapter_dir.iterdir()
    }


def test_fetch_into_an_empty_directory(
    registry: Registry, registered: AdapterVersion, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    registry.adapters.fetch(registered.ref, tmp_path / "empty")
    assert (tmp_path / "empty" / "adapter_config.json").is_file()


def test_fetch_refuses_a_non_empty_destination(
    registry: Registry, registered: AdapterVersion, tmp_path: Path
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty directory"):
        registry.adapters.fetch(registered.ref, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_open_verified_gives_a_private_copy(registry: Registry, registered: AdapterVersion) -> None:
    with registry.adapters.open_verified(registered.ref) as (version, path):
        assert version == registered
        assert json.loads((path / "adapter_config.json").read_text())["r"] == 4
        (path / "adapter_config.json").write_text("scribble")  # cannot reach the store
    registry.adapters.verify(registered.ref)
    assert not path.exists()


def test_linking_stores_the_very_files_and_makes_them_read_only(
    registry: Registry, adapter_dir: Path
) -> None:
    version = registry.adapters.register(adapter_dir, "linked", actor=ENGINEER, link=True)
    for entry in version.files:
        source = adapter_dir / entry.path
        assert source.stat().st_ino == registry.store.path_of(entry.sha256).stat().st_ino
        assert source.stat().st_mode & 0o222 == 0
    assert registry.adapters.verify(version.ref).files_verified == len(version.files)
    # a file rewritten in place afterwards (as root can) changes the stored bytes: refused
    weights = adapter_dir / "adapter_model.safetensors"
    weights.chmod(0o644)
    with weights.open("r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(VerificationError, match="changed"):
        registry.adapters.verify(version.ref)


def test_linking_falls_back_to_copying_where_links_fail(
    registry: Registry, adapter_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("loraledger.registry.adapter_dir.os.link", cross_device)
    version = registry.adapters.register(adapter_dir, "copied", actor=ENGINEER, link=True)
    weights = next(f for f in version.files if f.path == "adapter_model.safetensors")
    stored = registry.store.path_of(weights.sha256).stat()
    assert (adapter_dir / weights.path).stat().st_ino != stored.st_ino
    registry.adapters.verify(version.ref)


def test_copy_and_link_sign_the_same_version(
    registry: Registry, adapter_dir: Path, tmp_path: Path
) -> None:
    copied = registry.adapters.register(adapter_dir, "same", actor=ENGINEER)
    linked = registry.adapters.register(
        shutil.copytree(adapter_dir, tmp_path / "again"), "same", actor=ENGINEER, link=True
    )
    assert (copied.digest, copied.files) == (linked.digest, linked.files)


def test_unknown_refs(registry: Registry, registered: AdapterVersion) -> None:
    with pytest.raises(NotFound, match="no adapter named 'nope'"):
        registry.adapters.get("nope")
    with pytest.raises(NotFound, match=r"has no version v7 \(it has v1..v1\)"):
        registry.adapters.verify("bank-support@v7")


# --- who may register ----------------------------------------------------------------


@pytest.mark.parametrize("actor", [REVIEWER, AUDITOR])
def test_only_engineers_and_admins_register(
    registry: Registry, adapter_dir: Path, actor: str
) -> None:
    before = snapshot(registry)
    with pytest.raises(PermissionDenied, match="this needs admin or engineer"):
        registry.adapters.register(adapter_dir, "x", actor=actor)
    assert snapshot(registry) == before


def test_unknown_signing_identity(registry: Registry, adapter_dir: Path) -> None:
    before = snapshot(registry)
    with pytest.raises(NotFound, match="unknown identity 'mallory'"):
        registry.adapters.register(adapter_dir, "x", actor="mallory")
    with pytest.raises(UsageError, match="pass --as NAME"):
        registry.adapters.register(adapter_dir, "x", actor=None)
    assert snapshot(registry) == before


def test_revoked_signing_identity(registry: Registry, adapter_dir: Path) -> None:
    registry.identities.revoke(ENGINEER, actor=ADMIN, reason="left the team")
    before = snapshot(registry)
    with pytest.raises(PermissionDenied, match="'eve' was revoked \\(left the team\\)"):
        registry.adapters.register(adapter_dir, "x", actor=ENGINEER)
    assert snapshot(registry) == before


def test_a_key_that_is_not_the_registered_one(registry: Registry, adapter_dir: Path) -> None:
    shutil.copy(registry.keys.path_for(REVIEWER), registry.keys.path_for(ENGINEER))
    with pytest.raises(SigningKeyError, match="is not enrolled for it; 'eve' signs with"):
        registry.adapters.register(adapter_dir, "x", actor=ENGINEER)


# --- bad input writes nothing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d: (d / "adapter_config.json").write_text("{oops"), "invalid JSON"),
        (lambda d: (d / "adapter_config.json").unlink(), "adapter_config.json is missing"),
        (
            lambda d: (d / "adapter_model.safetensors").write_bytes(b"\x00" * 20),
            "not a valid safetensors file",
        ),
        (lambda d: (d / "adapter_model.bin").write_bytes(b"\x80\x04K\x01."), "pickle-based"),
        (lambda d: (d / "link").symlink_to("/etc/passwd"), "symlink 'link' is refused"),
    ],
)
def test_bad_directories_write_nothing(
    registry: Registry, adapter_dir: Path, spoil: object, message: str
) -> None:
    spoil(adapter_dir)  # type: ignore[operator]
    before = snapshot(registry)
    with pytest.raises(InputError, match=message):
        registry.adapters.register(adapter_dir, "bank-support", actor=ENGINEER)
    assert snapshot(registry) == before


def test_errors_name_the_users_file_not_the_staged_copy(
    registry: Registry, adapter_dir: Path
) -> None:
    (adapter_dir / "adapter_config.json").write_text("{}")
    with pytest.raises(InputError) as caught:
        registry.adapters.register(adapter_dir, "x", actor=ENGINEER)
    assert str(caught.value).startswith(str(adapter_dir / "adapter_config.json"))


@pytest.mark.parametrize("name", ["a/b", "x'; DROP TABLE adapters; --", "tab\there", "../up"])
def test_bad_adapter_names_write_nothing(registry: Registry, adapter_dir: Path, name: str) -> None:
    before = snapshot(registry)
    with pytest.raises(InputError, match="adapter name .* is invalid"):
        registry.adapters.register(adapter_dir, name, actor=ENGINEER)
    assert snapshot(registry) == before


# --- the tamper matrix: each change after registration fails verification ----------------


def _object(registry: Registry, version: AdapterVersion, path: str) -> Path:
    entry = next(f for f in version.files if f.path == path)
    target = registry.store.path_of(entry.sha256)
    target.chmod(0o644)
    return target


def flip_byte_in_weights(registry: Registry, version: AdapterVersion) -> None:
    target = _object(registry, version, "adapter_model.safetensors")
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01
    target.write_bytes(bytes(data))


def delete_object(registry: Registry, version: AdapterVersion) -> None:
    _object(registry, version, "adapter_config.json").unlink()


def add_file_row(registry: Registry, version: AdapterVersion) -> None:
    entry = version.files[0]
    sql(
        registry,
        "INSERT INTO adapter_files VALUES (?, ?, 'extra.json', ?, ?)",
        [version.name, version.version, entry.sha256, entry.size_bytes],
    )


def delete_file_row(registry: Registry, version: AdapterVersion) -> None:
    sql(registry, "DELETE FROM adapter_files WHERE path = 'README.md'")


def rename_file_row(registry: Registry, version: AdapterVersion) -> None:
    sql(registry, "UPDATE adapter_files SET path = 'notes.md' WHERE path = 'README.md'")


def repoint_file_row(registry: Registry, version: AdapterVersion) -> None:
    other = next(f for f in version.files if f.path == "README.md")
    sql(
        registry,
        "UPDATE adapter_files SET sha256 = ? WHERE path = 'adapter_config.json'",
        [other.sha256],
    )


def change_recorded_digest(registry: Registry, version: AdapterVersion) -> None:
    sql(registry, "UPDATE adapter_versions SET digest = ?", ["ab" * 32])


def replace_bundle(registry: Registry, version: AdapterVersion) -> None:
    path = registry.store.path_of(version.bundle_sha256)
    path.chmod(0o644)
    path.write_text(json.dumps(json.loads(path.read_text()), indent=1))  # same content


def point_at_another_bundle(registry: Registry, version: AdapterVersion) -> None:
    other = registry.adapters.register(
        small_adapter(registry.root.parent / "other", 5), "other", actor=ENGINEER
    )
    sql(
        registry,
        "UPDATE signatures SET bundle_sha256 = ? WHERE id = ?",
        [other.bundle_sha256, version.signature_id],
    )


def compromise_signer(registry: Registry, version: AdapterVersion) -> None:
    """Not a tamper but its effect: the key is declared stolen since before it signed."""
    since = version.created_at - timedelta(seconds=1)
    registry.identities.revoke(
        version.signer, actor=ADMIN, reason="laptop stolen", compromised_since=since
    )


def swap_signer_public_key(registry: Registry, version: AdapterVersion) -> None:
    other = registry.identities.get(REVIEWER)
    sql(
        registry,
        "UPDATE identities SET public_key_pem = ?, key_fingerprint = ? WHERE name = ?",
        [other.public_key_pem, other.key_fingerprint, version.signer],
    )


def swap_public_key_keep_fingerprint(registry: Registry, version: AdapterVersion) -> None:
    other = registry.identities.get(REVIEWER)
    sql(
        registry,
        "UPDATE identities SET public_key_pem = ? WHERE name = ?",
        [other.public_key_pem, version.signer],
    )


def swap_key_everywhere_and_resign(registry: Registry, version: AdapterVersion) -> None:
    """The thorough forger: new key in identities and signatures, bundle re-signed."""
    from loraledger.registry.signing import sign_directory

    forged = registry.keys.create("forger")
    with registry.adapters.open_verified(version.ref) as (_, directory):
        bundle_dir = directory.parent / "forged"
        bundle_dir.mkdir()
        sign_directory(directory, forged, bundle_dir / "b.sig")
        bundle_sha = registry.store.put_bytes((bundle_dir / "b.sig").read_bytes())
    sql(
        registry,
        "UPDATE identities SET public_key_pem = ?, key_fingerprint = ? WHERE name = ?",
        [forged.public_key_pem, forged.fingerprint, version.signer],
    )
    sql(
        registry,
        "UPDATE signatures SET key_fingerprint = ?, bundle_sha256 = ?",
        [forged.fingerprint, bundle_sha],
    )


def claim_another_signer(registry: Registry, version: AdapterVersion) -> None:
    other = registry.identities.get(REVIEWER)
    sql(
        registry,
        "UPDATE signatures SET signer = ?, key_fingerprint = ?",
        [REVIEWER, other.key_fingerprint],
    )


def delete_signer(registry: Registry, version: AdapterVersion) -> None:
    sql(registry, "DELETE FROM identities WHERE name = ?", [version.signer])


TAMPERS = {
    flip_byte_in_weights: "files do not match the signature \\(changed: adapter_model.safetensors",
    delete_object: "'adapter_config.json'.*missing from the artifact store",
    add_file_row: "recorded but not signed: extra.json",
    delete_file_row: "signed but not recorded: README.md",
    rename_file_row: "signed but not recorded: README.md; recorded but not signed: notes.md",
    repoint_file_row: "recorded digest differs from the signed one: adapter_config.json",
    change_recorded_digest: "recorded digest does not match the signed digest",
    replace_bundle: "in the store was modified",
    point_at_another_bundle: "recorded digest does not match the signed digest",
    compromise_signer: "was compromised since .*: laptop stolen\\)",
    swap_signer_public_key: "identities row eve: public_key_pem is .* its signed history",
    swap_public_key_keep_fingerprint: "identities row eve: public_key_pem is",
    claim_another_signer: 'signer is "rita" but audit event',
    swap_key_everywhere_and_resign: "identities row eve: public_key_pem is",
    delete_signer: "identities row eve, created by audit event #3, is missing",
}


@pytest.mark.parametrize("tamper", list(TAMPERS), ids=lambda f: f.__name__)
def test_tampering_is_detected_and_nothing_is_handed_out(
    registry: Registry, registered: AdapterVersion, tmp_path: Path, tamper: object
) -> None:
    registry.adapters.verify(registered.ref)
    tamper(registry, registered)  # type: ignore[operator]
    message = TAMPERS[tamper]  # type: ignore[index]
    # as the next process reads it (this one trusts the identity history it verified
    # for the same head, and an edited identities row changes nothing decided from it)
    registry = Registry.open(registry.address, keys=registry.keys)
    with pytest.raises(VerificationError, match=message):
        registry.adapters.verify(registered.ref)
    dest = tmp_path / "out"
    with pytest.raises(VerificationError, match=message):
        registry.adapters.fetch(registered.ref, dest)
    assert not dest.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial")] == []
    with pytest.raises(VerificationError), registry.adapters.open_verified(registered.ref):
        pass
    assert list(registry.store.tmp.iterdir()) == []


def test_other_versions_still_verify_after_tampering(
    registry: Registry, registered: AdapterVersion, tmp_path: Path
) -> None:
    other = registry.adapters.register(small_adapter(tmp_path / "o", 9), "other", actor=ENGINEER)
    flip_byte_in_weights(registry, registered)
    registry.adapters.verify(other.ref)


@pytest.mark.parametrize("config", ["not json", "[1, 2]", '{"peft_type": 5}'])
def test_a_mangled_adapter_config_row_is_named_not_a_traceback(
    registry: Registry, registered: AdapterVersion, config: str
) -> None:
    sql(registry, "UPDATE adapter_versions SET adapter_config = ?", [config])
    with pytest.raises(VerificationError, match=f"adapter_versions row {registered.ref}"):
        registry.adapters.registration(registered.ref)
    with pytest.raises(VerificationError, match=f"adapter_versions row {registered.ref}"):
        registry.verify_records()


def test_an_encrypted_key_signs_with_its_passphrase(
    registry: Registry, adapter_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.identities.create("sec", Role.ENGINEER, actor=ADMIN, passphrase=b"pw")
    with pytest.raises(SigningKeyError, match="is encrypted; set LORALEDGER_PASSPHRASE"):
        registry.adapters.register(adapter_dir, "x", actor="sec")
    monkeypatch.setenv("LORALEDGER_PASSPHRASE", "pw")
    version = registry.adapters.register(adapter_dir, "x", actor="sec")
    assert registry.adapters.verify(version.ref).signer == "sec"
