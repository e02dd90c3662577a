from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from loraledger.registry import Registry, schema
from loraledger.registry.audit import utcnow
from loraledger.registry.registry import DB_FILE

from loraledger.errors import Conflict, NotARegistry, SchemaTooNew
from tests.registry.helpers import sql


def test_init_lays_out_the_directory(empty_registry: Registry) -> None:
    root = empty_registry.root
    database = ["registry.duckdb"] if empty_registry.db.dialect.name == "duckdb" else []
    assert sorted(p.name for p in root.iterdir()) == sorted(["objects", "tmp", *database])
    with empty_registry.db.read() as conn:
        assert schema.current_version(conn) == schema.LATEST_VERSION
        views = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'"
            ).fetchall()
        }
    assert {
        "v_adapter_versions",
        "v_latest_adapter_versions",
        "v_adapter_files",
        "v_audit_log",
        "v_identities",
    } <= views
    (event,) = empty_registry.audit_events()
    assert event.action == "registry.init"
    assert event.payload["schema_version"] == schema.LATEST_VERSION


def test_open_finds_the_same_registry(empty_registry: Registry) -> None:
    again = Registry.open(empty_registry.address)
    assert again.registry_id == empty_registry.registry_id


def test_init_twice_is_refused(empty_registry: Registry) -> None:
    with pytest.raises(Conflict, match="already a LoRA Ledger registry"):
        Registry.init(
            empty_registry.address,
            store=empty_registry.root if isinstance(empty_registry.address, str) else None,
        )


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "file").write_text("mine")
    with pytest.raises(NotARegistry, match="exists and is not an empty directory"):
        Registry.init(tmp_path / "stuff")
    assert [p.name for p in (tmp_path / "stuff").iterdir()] == ["file"]


def test_missing_directory_is_not_a_registry(tmp_path: Path) -> None:
    with pytest.raises(NotARegistry, match="no registry at .*run `loraledger init`"):
        Registry.open(tmp_path / "nope")


def test_directory_without_database_is_not_a_registry(tmp_path: Path) -> None:
    with pytest.raises(NotARegistry, match="is not a LoRA Ledger registry"):
        Registry.open(tmp_path)


def test_garbage_database_file(tmp_path: Path) -> None:
    (tmp_path / DB_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(NotARegistry, match="registry.duckdb"):
        Registry.open(tmp_path)


def test_foreign_duckdb_file(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / DB_FILE))
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.close()
    with pytest.raises(NotARegistry, match="holds no LoRA Ledger schema"):
        Registry.open(tmp_path)


def test_newer_schema_is_refused(empty_registry: Registry) -> None:
    sql(empty_registry, "INSERT INTO schema_migrations VALUES (99, 'future', now())")
    with pytest.raises(
        SchemaTooNew, match=f"schema version 99, newer than the {schema.LATEST_VERSION} this"
    ):
        Registry.open(empty_registry.address)


def test_migrations_are_numbered_and_apply_in_order() -> None:
    found = schema.migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    conn = duckdb.connect()
    applied = schema.apply_pending(conn, utcnow())
    assert [m.version for m in applied] == [m.version for m in found]
    assert schema.apply_pending(conn, utcnow()) == []
    assert schema.current_version(conn) == schema.LATEST_VERSION


def test_older_registry_is_migrated_forward(
    empty_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = schema.Migration(
        schema.LATEST_VERSION + 1, "add_notes", "CREATE TABLE notes (text VARCHAR)"
    )
    shipped = schema.migrations()
    monkeypatch.setattr(schema, "migrations", lambda: [*shipped, extra])
    monkeypatch.setattr(schema, "LATEST_VERSION", extra.version)
    reopened = Registry.open(empty_registry.address)
    with reopened.db.read() as conn:
        assert schema.current_version(conn) == extra.version
    event = reopened.audit_events()[-1]
    assert (event.action, event.payload) == (
        "registry.migrate",
        {"from": extra.version - 1, "to": extra.version},
    )
    reopened.verify_audit()


def test_a_version_1_registry_is_migrated_to_datasets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = schema.migrations()
    with monkeypatch.context() as patch:
        patch.setattr(schema, "migrations", lambda: shipped[:1])
        old = Registry.init(tmp_path / "old")
    with old.db.read() as conn:
        assert schema.current_version(conn) == 1
    reopened = Registry.open(tmp_path / "old")
    with reopened.db.read() as conn:
        assert schema.current_version(conn) == schema.LATEST_VERSION
        assert conn.execute("SELECT count(*) FROM dataset_records").fetchone() == (0,)
    assert reopened.audit_events()[-1].payload == {"from": 1, "to": schema.LATEST_VERSION}
    reopened.verify_audit()
