"""A registry on PostgreSQL (registry/postgres.py): what the server itself enforces, the
writer lock, the URL rules and the placeholder rewrite, on a real server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from loraledger.registry import Registry, Role
from loraledger.registry.dialect import HISTORY_TABLES
from loraledger.registry.postgres import WRITE_LOCK_KEY, PostgresDatabase, check_url, psycopg_sql

from loraledger.errors import AlreadyExists, LockTimeout, NotARegistry, StorageError, UsageError
from tests.conftest import ADMIN
from tests.postgres import Server


@pytest.fixture(scope="module")
def backend() -> str:
    return "postgresql"


def test_history_refuses_update_and_delete_even_to_the_registry_s_own_account(
    registered: object, registry: Registry
) -> None:
    for table in HISTORY_TABLES:
        for statement in (f"UPDATE {table} SET {_first_column(registry, table)} = NULL",
                          f"DELETE FROM {table}", f"TRUNCATE {table}"):  # fmt: skip
            with (
                pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
                registry.db.write() as conn,
            ):
                conn.execute(statement)
    registry.verify_audit()
    registry.verify_records()


def _first_column(registry: Registry, table: str) -> str:
    with registry.db.read() as conn:
        row = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position LIMIT 1",
            [table],
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_reads_cannot_write(registry: Registry) -> None:
    with (
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        registry.db.read() as conn,
    ):
        conn.execute("INSERT INTO registry_meta VALUES ('sneaked', 'in')")


def test_a_writer_waits_for_another_then_times_out_naming_the_database(
    registry: Registry,
) -> None:
    assert isinstance(registry.db, PostgresDatabase)
    holder = psycopg.connect(registry.db.url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", [WRITE_LOCK_KEY])
    try:
        impatient = Registry.open(registry.address, keys=registry.keys, lock_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(LockTimeout, match=r"stayed busy with another writer for 0.5s"):
            impatient.identities.create("bob", Role.ENGINEER, actor=ADMIN)
        assert 0.4 < time.monotonic() - started < 5
        assert [i.name for i in impatient.identities.list()] == ["alice", "eve", "otto", "rita"]
        # a writer that waits less than the holder holds goes through
        release = threading.Timer(0.3, holder.execute, ["SELECT pg_advisory_unlock_all()"])
        release.start()
        registry.identities.create("bob", Role.ENGINEER, actor=ADMIN)
        release.join()
    finally:
        holder.close()
    assert "bob" in [i.name for i in registry.identities.list()]


def test_no_connection_is_held_between_operations(
    registry: Registry, postgres_server: Server
) -> None:
    registry.adapters.list()
    registry.audit_events()
    held = postgres_server.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'loraledger'"
    )
    assert held == "0"


def test_a_password_in_the_url_is_refused() -> None:
    with pytest.raises(UsageError, match=r"holds a password; .*~/.pgpass line or PGPASSWORD"):
        check_url("postgresql://alice:s3cret@db.example:5432/ledger")


def test_a_url_without_a_database_is_refused() -> None:
    with pytest.raises(UsageError, match="names no database"):
        check_url("postgresql://alice@db.example:5432")


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path, postgres_server: Server) -> None:
    url = f"postgresql://alice@127.0.0.1:{_closed_port()}/ledger"
    with pytest.raises(StorageError, match=rf"cannot connect to the registry database {url} "):
        Registry.open(url, lock_timeout=1)


def test_a_wrong_password_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, postgres_server: Server
) -> None:
    monkeypatch.setenv("PGPASSWORD", "wrong")
    with pytest.raises(StorageError, match="password authentication failed"):
        Registry.open(postgres_server.url())


def test_an_empty_database_is_not_a_registry(
    monkeypatch: pytest.MonkeyPatch, postgres_server: Server
) -> None:
    url = postgres_server.create_database("empty_one")
    monkeypatch.setenv("PGPASSWORD", "test-only-password")
    with pytest.raises(NotARegistry, match="holds no LoRA Ledger schema; run `loraledger init`"):
        Registry.open(url)


def test_init_needs_a_store_and_refuses_a_registry_twice(
    registry: Registry, tmp_path: Path
) -> None:
    assert isinstance(registry.address, str)
    with pytest.raises(UsageError, match="needs --store"):
        Registry.init(registry.address)
    with pytest.raises(AlreadyExists, match="already a LoRA Ledger registry"):
        Registry.init(registry.address, store=tmp_path / "another-store")
    assert not (tmp_path / "another-store").exists()


def test_a_store_that_is_not_mounted_is_named(registry: Registry, tmp_path: Path) -> None:
    moved = registry.root.rename(tmp_path / "unmounted")
    with pytest.raises(NotARegistry, match=r"artifact store .* is not a directory on this machine"):
        Registry.open(registry.address)
    moved.rename(registry.root)


@given(st.text(alphabet="?%'\"ab ", max_size=20))
def test_placeholders_are_rewritten_outside_quotes_only(text: str) -> None:
    out = psycopg_sql(text)
    quoted = text.count("'") % 2 == 0 and text.count('"') % 2 == 0
    if quoted and "'" not in text and '"' not in text:
        assert out == text.replace("%", "%%").replace("?", "%s")
    assert out.count("%s") <= text.count("?")
    assert psycopg_sql("SELECT '?', \"a?\" WHERE x LIKE ? || '%'") == (
        "SELECT '?', \"a?\" WHERE x LIKE %s || '%%'"
    )


def _closed_port() -> int:
    from tests.postgres import free_port

    return free_port()
