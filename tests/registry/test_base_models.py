"""Registering base models: the files hashed where they live, versions counting up, the
event in the audit log, and verification naming what changed under the base."""

from __future__ import annotations

from pathlib import Path

import pytest
from loraledger.registry import Registry

from loraledger.errors import NotFound, PermissionDenied, VerificationError
from tests.conftest import AUDITOR, ENGINEER, REVIEWER
from tests.registry.helpers import sql


def base_files(directory: Path, text: str = "weights") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text('{"model_type": "llama"}\n')
    (directory / "model.safetensors").write_text(text)
    return directory


def register(registry: Registry, directory: Path, actor: str = ENGINEER):  # type: ignore[no-untyped-def]
    return registry.base_models.register(
        directory,
        "tiny",
        kind="test",
        architecture="LlamaForCausalLM",
        origin={"source": "tests"},
        actor=actor,
    )


def test_register_hashes_the_files_and_records_an_event(registry: Registry, tmp_path: Path) -> None:
    base = register(registry, base_files(tmp_path / "base"))
    assert base.ref == "tiny@v1"
    assert [f.path for f in base.files] == ["config.json", "model.safetensors"]
    assert base.location == str((tmp_path / "base").resolve())
    (event,) = registry.audit_events(action="base.register")
    assert event.subject == "base:tiny@v1" and event.actor == ENGINEER
    assert event.payload["digest"] == base.digest
    assert registry.verify_audit().head_seq == registry.audit_head()[0]


def test_versions_count_up_and_latest_is_the_default(registry: Registry, tmp_path: Path) -> None:
    first = register(registry, base_files(tmp_path / "a", "one"))
    second = register(registry, base_files(tmp_path / "b", "two"))
    assert (first.version, second.version) == (1, 2)
    assert first.digest != second.digest
    assert registry.base_models.get("tiny").ref == "tiny@v2"
    assert registry.base_models.get("tiny@v1").digest == first.digest
    assert [b.ref for b in registry.base_models.list()] == ["tiny@v1", "tiny@v2"]


def test_verify_names_a_changed_or_missing_file(registry: Registry, tmp_path: Path) -> None:
    directory = base_files(tmp_path / "base")
    register(registry, directory)
    assert registry.base_models.verify("tiny").ref == "tiny@v1"
    (directory / "model.safetensors").write_text("swapped")
    with pytest.raises(VerificationError, match=r"model\.safetensors"):
        registry.base_models.verify("tiny")
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    with pytest.raises(VerificationError, match="no longer at"):
        registry.base_models.verify("tiny")


def test_unknown_bases_say_how_to_list_them(registry: Registry) -> None:
    with pytest.raises(NotFound, match="loraledger base list"):
        registry.base_models.get("nothing")


@pytest.mark.parametrize("actor", [REVIEWER, AUDITOR])
def test_only_engineers_and_admins_register(registry: Registry, tmp_path: Path, actor: str) -> None:
    with pytest.raises(PermissionDenied):
        register(registry, base_files(tmp_path / "base"), actor=actor)
    assert registry.base_models.list() == []


BASE_TAMPERED = {
    "digest": "'" + "0" * 64 + "'",
    "kind": "'embedded'",
    "location": "'/elsewhere'",
    "architecture": "'GPT2LMHeadModel'",
    "origin": """'{"source": "a hub"}'""",
    "file_count": "file_count + 1",
    "total_bytes": "total_bytes + 1",
    "created_by": "'rita'",
}


@pytest.mark.parametrize("column", sorted(BASE_TAMPERED))
def test_any_column_of_a_base_model_row_changed_is_refused_where_it_is_read(
    registry: Registry, tmp_path: Path, column: str
) -> None:
    """Issue #35: base model rows were never compared with the events that registered
    them. Each column, and each file row, is now checked by every read and by `audit
    verify`."""
    register(registry, base_files(tmp_path / "base"))
    sql(registry, f"UPDATE base_models SET {column} = {BASE_TAMPERED[column]}")
    for read in (lambda: registry.base_models.get("tiny@v1"), registry.base_models.list):
        with pytest.raises(VerificationError, match="base_models row tiny@v1"):
            read()
    with pytest.raises(VerificationError, match="base_models row tiny@v1"):
        registry.verify_records()


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE base_model_files SET sha256 = '" + "0" * 64 + "' WHERE path = 'config.json'",
        "UPDATE base_model_files SET size_bytes = size_bytes + 1",
        "DELETE FROM base_model_files WHERE path = 'config.json'",
    ],
)
def test_a_base_model_file_row_changed_is_refused(
    registry: Registry, tmp_path: Path, change: str
) -> None:
    register(registry, base_files(tmp_path / "base"))
    sql(registry, change)
    with pytest.raises(VerificationError, match="base_models row tiny@v1"):
        registry.base_models.get("tiny@v1")
