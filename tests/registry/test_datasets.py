"""Dataset versions in the registry: stored, verified, provable, refused when wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loraledger.registry import Registry
from loraledger.registry.datasets import _COLUMNS, record_sha256
from loraledger.trainer.datasets import add_dataset, analyse

from loraledger.errors import InputError, NotFound, PermissionDenied, VerificationError
from tests.conftest import ENGINEER, REVIEWER
from tests.registry.helpers import snapshot, sql

RECORDS = [
    {"prompt": f"What is rule {i}?", "completion": f"Rule {i} says {i * 7}."} for i in range(10)
]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "bank.jsonl"
    lines = [*RECORDS, RECORDS[3], {"prompt": "Mail?", "completion": "ops@bank.example.com"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def add(registry: Registry, path: Path, actor: str = ENGINEER, name: str = "bank"):  # type: ignore[no-untyped-def]
    return add_dataset(
        registry, path, name=name, source="written by the team", license="CC-BY-4.0", actor=actor
    )


def test_register_and_read_back(registry: Registry, data_file: Path) -> None:
    version = add(registry, data_file)
    assert version.ref == "bank@v1"
    assert (version.record_count, version.duplicate_count) == (12, 1)
    assert version.pii["email"].lines == (12,)
    assert version.license == "CC-BY-4.0" and version.file_name == "bank.jsonl"
    assert registry.store.path_of(version.file_sha256).read_bytes() == data_file.read_bytes()
    assert registry.datasets.get("bank") == version
    assert [v.ref for v in registry.datasets.list()] == ["bank@v1"]
    assert add(registry, data_file).ref == "bank@v2"
    event = registry.audit_events(action="dataset.register")[0]
    assert event.subject == "dataset:bank@v1"
    assert event.payload["merkle_root"] == version.merkle_root
    assert event.payload["pii_counts"] == {"email": 1}
    registry.verify_audit()


def test_verify_and_prove(registry: Registry, data_file: Path) -> None:
    version = add(registry, data_file)
    registry.datasets.verify("bank@v1")
    proof = registry.datasets.prove("bank", record_sha256(RECORDS[3]))
    assert (proof.line, proof.index, proof.size) == (4, 4, 12)
    assert proof.merkle_root == version.merkle_root
    with pytest.raises(NotFound, match="is not in bank@v1"):
        registry.datasets.prove("bank", record_sha256({"prompt": "x", "completion": "y"}))


def test_only_engineers_and_admins_register(registry: Registry, data_file: Path) -> None:
    before = snapshot(registry)
    with pytest.raises(PermissionDenied, match="this needs admin or engineer"):
        add(registry, data_file, actor=REVIEWER)
    assert snapshot(registry) == before


@pytest.mark.parametrize("spoil", ["bad json", "bad license", "bad name", "empty source"])
def test_bad_input_writes_nothing(registry: Registry, data_file: Path, spoil: str) -> None:
    before = snapshot(registry)
    with pytest.raises(InputError):
        if spoil == "bad json":
            data_file.write_text("{oops\n")
            add(registry, data_file)
        elif spoil == "bad license":
            add_dataset(
                registry, data_file, name="bank", source="s", license="Nope-1", actor=ENGINEER
            )
        elif spoil == "bad name":
            add(registry, data_file, name="../bank")
        else:
            add_dataset(registry, data_file, name="bank", source=" ", license="MIT", actor=ENGINEER)
    assert snapshot(registry) == before


def test_a_file_changed_after_analysis_is_refused(registry: Registry, data_file: Path) -> None:
    analysis = analyse(data_file)
    data_file.write_text(data_file.read_text() + json.dumps(RECORDS[0]) + "\n")
    before = snapshot(registry)
    with pytest.raises(VerificationError, match="changed while it was being registered"):
        registry.datasets.register(
            data_file, "bank", analysis, license="MIT", source="s", actor=ENGINEER
        )
    assert snapshot(registry) == before


def test_tampering_is_detected(registry: Registry, data_file: Path) -> None:
    version = add(registry, data_file)
    sql(registry, "UPDATE dataset_records SET sha256 = ? WHERE position = 2", ["ab" * 32])
    with pytest.raises(VerificationError, match="no longer add up to the recorded Merkle root"):
        registry.datasets.verify("bank")
    with pytest.raises(VerificationError, match="no longer add up"):
        registry.datasets.prove("bank", record_sha256(RECORDS[0]))
    sql(
        registry,
        "UPDATE dataset_records SET sha256 = ? WHERE position = 2",
        [record_sha256(RECORDS[1])],
    )
    registry.datasets.verify("bank")
    stored = registry.store.path_of(version.file_sha256)
    stored.chmod(0o644)
    stored.write_text(stored.read_text().replace("Rule 1 says", "Rule 1 said"))
    with pytest.raises(VerificationError, match="stored data file was modified"):
        registry.datasets.verify("bank")
    stored.unlink()
    with pytest.raises(VerificationError, match="missing from the store"):
        registry.datasets.verify("bank")


def test_unknown_dataset(registry: Registry) -> None:
    with pytest.raises(NotFound, match="no dataset named 'nope'; see `loraledger data list`"):
        registry.datasets.get("nope")


# every column of a dataset row, with a value a tamperer might put there (the gate's data
# rule reads license and pii; trace and the ML-BOM read the rest)
TAMPERED = {
    "file_sha256": "'" + "0" * 64 + "'",
    "file_name": "'other.jsonl'",
    "size_bytes": "size_bytes + 1",
    "format": "'chat'",
    "record_count": "record_count - 1",
    "duplicate_count": "0",
    "merkle_root": "'" + "1" * 64 + "'",
    "license": "'MIT'",
    "source": "'a public corpus'",
    "pii": "'{}'",
    "git": """'{"repository": "x", "commit": null, "path": "a", "modified": false, """
    """"untracked": true}'""",
    "source_path": "'/elsewhere/bank.jsonl'",
    "created_by": "'rita'",
    "name": "'renamed'",
    "version": "7",
}


@pytest.mark.parametrize("column", sorted(TAMPERED))
def test_any_column_of_a_dataset_row_changed_is_refused_where_it_is_read(
    registry: Registry, data_file: Path, column: str
) -> None:
    """Issue #35: an engineer ran `UPDATE datasets SET license='MIT', pii='{}'` and the
    gate's data rules passed. Every column is checked against the dataset.register
    event (the fields it states, the rest by the row's sha256), by every read and by
    `audit verify`."""
    add(registry, data_file)
    sql(registry, f"UPDATE datasets SET {column} = {TAMPERED[column]}")
    ref = "renamed" if column == "name" else "bank"
    for read in (lambda: registry.datasets.get(ref), registry.datasets.list):
        with pytest.raises(VerificationError, match="datasets row|dataset.register audit event"):
            read()
    with pytest.raises(VerificationError, match="datasets row"):
        registry.verify_records()


def test_a_dataset_row_deleted_or_added_is_found_by_audit_verify(
    registry: Registry, data_file: Path
) -> None:
    add(registry, data_file)
    assert registry.verify_records()["datasets"] == 1
    columns = _COLUMNS.replace("name, ", "", 1)
    sql(registry, f"INSERT INTO datasets (name, {columns}) SELECT 'copy', {columns} FROM datasets")
    with pytest.raises(VerificationError, match="datasets row copy@v1 has 0 dataset.register"):
        registry.verify_records()
    sql(registry, "DELETE FROM datasets")
    with pytest.raises(VerificationError, match="datasets row bank@v1, recorded by audit event"):
        registry.verify_records()


RUN_TAMPERED = [
    "UPDATE training_runs SET base_digest = '" + "0" * 64 + "'",
    "UPDATE training_runs SET base_version = 2",
    "UPDATE training_runs SET config_sha256 = '" + "1" * 64 + "'",
    "UPDATE training_runs SET code_dirty = NOT code_dirty",
    "UPDATE training_runs SET seed = 7",
    "UPDATE training_runs SET created_by = 'rita'",
    "UPDATE training_run_datasets SET version = 2",
    "UPDATE training_run_datasets SET merkle_root = '" + "2" * 64 + "'",
    "DELETE FROM training_run_datasets",
    "DELETE FROM training_runs",
]


@pytest.mark.parametrize("change", RUN_TAMPERED)
def test_the_columns_that_index_a_training_run_are_checked_against_its_record(
    registry: Registry, data_file: Path, tmp_path: Path, change: str
) -> None:
    """The training run's record is checked against its audit event; its index columns
    and dataset rows -- what impact, the dataset's users and the lineage view read by SQL
    -- were not (issue #35): a dataset row deleted hid the adapter from `data impact`."""
    from loraledger.registry.models import DatasetUse
    from loraledger.registry.synthetic import write_lora_adapter

    from tests.policies.helpers import a_training_run
    from tests.registry.test_base_models import base_files, register

    dataset = add(registry, data_file)
    base = register(registry, base_files(tmp_path / "base"))
    use = DatasetUse(ref=dataset.ref, file_sha256=dataset.file_sha256,
                     merkle_root=dataset.merkle_root, records=dataset.record_count)  # fmt: skip
    run = a_training_run(registry, base.ref).model_copy(update={"datasets": (use,)})
    adapter = write_lora_adapter(tmp_path / "a", hidden=32, layers=2, r=4)
    version = registry.adapters.register(adapter, "bot", actor=ENGINEER, training_run=run)
    assert registry.adapters.training_run(version.ref) == run
    sql(registry, change)
    fresh = Registry.open(registry.address, keys=registry.keys)  # nothing remembered
    with pytest.raises(VerificationError, match="training_runs row"):
        fresh.adapters.training_run(version.ref)
