"""The registry's SQL in both dialects (registry/dialect.py): every migration applies on a
real PostgreSQL server, the auditor views exist on both, and on PostgreSQL the history
tables refuse UPDATE, DELETE and TRUNCATE at the database."""

from __future__ import annotations

import duckdb
import pytest
from loraledger.registry.dialect import (
    DUCKDB,
    HISTORY_TABLES,
    META_TABLES,
    POSTGRESQL,
    REVOCABLE_TABLES,
    DialectError,
    split_statements,
)
from loraledger.registry.schema import migrations

from tests.postgres import Server

NOW = "2026-01-01 00:00:00"


def _duckdb_schema() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(":memory:")
    for migration in migrations():
        for statement in DUCKDB.statements(migration.sql):
            conn.execute(statement)
    return conn


@pytest.fixture(scope="module")
def schema_db(postgres_server: Server) -> str:
    """A PostgreSQL database holding every migration, applied as PostgreSQL statements."""
    postgres_server.create_database("schema")
    for migration in migrations():
        if statements := POSTGRESQL.statements(migration.sql):
            postgres_server.psql(";\n".join(statements), "schema")
    for statement in POSTGRESQL.guards():  # one by one: a function body holds ';'
        postgres_server.psql(statement, "schema")
    return "schema"


def test_duckdb_runs_the_migrations_as_written() -> None:
    for migration in migrations():
        assert DUCKDB.statements(migration.sql) == split_statements(migration.sql)


def test_postgresql_has_every_table_and_auditor_view_duckdb_has(
    postgres_server: Server, schema_db: str
) -> None:
    conn = _duckdb_schema()

    def names(kind: str) -> set[str]:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = ?", [kind]
        ).fetchall()
        return {r[0] for r in rows}

    def pg_names(kind: str) -> set[str]:
        listed = postgres_server.psql(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = 'public' AND table_type = '{kind}'",
            schema_db,
        )
        return set(listed.splitlines())

    assert pg_names("BASE TABLE") == names("BASE TABLE")
    assert pg_names("VIEW") == names("VIEW") and "v_audit_log" in pg_names("VIEW")


def test_every_table_is_history_revocable_or_bookkeeping_exactly_once() -> None:
    tables = {
        r[0]
        for r in _duckdb_schema()
        .execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'")
        .fetchall()
    }
    listed = [*HISTORY_TABLES, *REVOCABLE_TABLES, *META_TABLES]
    assert len(listed) == len(set(listed))
    assert set(listed) == tables, "classify each new table in registry/dialect.py"


def test_duckdb_adds_no_guards() -> None:
    assert DUCKDB.guards() == []


@pytest.mark.parametrize("table", HISTORY_TABLES)
def test_history_refuses_update_delete_and_truncate(
    postgres_server: Server, schema_db: str, table: str
) -> None:
    column = postgres_server.psql(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_name = '{table}' ORDER BY ordinal_position LIMIT 1",
        schema_db,
    )
    for statement in (
        f"UPDATE {table} SET {column} = {column}",
        f"DELETE FROM {table}",
        f"TRUNCATE {table}",
    ):
        with pytest.raises(RuntimeError, match=f"on {table} refused.*append-only"):
            postgres_server.psql(statement, schema_db)


def test_history_takes_appends_and_identities_take_a_revocation(
    postgres_server: Server, schema_db: str
) -> None:
    postgres_server.psql(
        "INSERT INTO audit_events VALUES "
        f"(1, '{NOW}', 'alice', 'registry.init', 'registry', '{{}}', 'g', 'h1');"
        "INSERT INTO identities (name, role, public_key_pem, key_fingerprint, status, "
        f"created_at, created_by) VALUES ('eve', 'engineer', 'pem', 'fp', 'active', '{NOW}', "
        "'alice');"
        f"UPDATE identities SET status = 'revoked', revoked_at = '{NOW}' WHERE name = 'eve'",
        schema_db,
    )
    assert postgres_server.psql("SELECT hash FROM audit_events", schema_db) == "h1"
    assert postgres_server.psql("SELECT status FROM v_identities", schema_db) == "revoked"


def test_the_latest_version_view_agrees_on_both(postgres_server: Server, schema_db: str) -> None:
    rows = "".join(
        f"INSERT INTO signatures VALUES ('s{n}{v}', 'f', 'b', 'eve', 'fp', 'd', '{NOW}');"
        f"INSERT INTO adapter_versions VALUES ('{n}', {v}, 'd', 's{n}{v}', 'LORA', NULL, "
        f"'{{}}', 1, 1, '/src', '{NOW}', 'eve');"
        for n, v in (("a", 1), ("a", 2), ("b", 1), ("a", 3), ("b", 2))
    )
    postgres_server.psql(rows, schema_db)
    conn = _duckdb_schema()
    for statement in split_statements(rows):
        conn.execute(statement)
    query = "SELECT ref FROM v_latest_adapter_versions ORDER BY ref"
    duck = [r[0] for r in conn.execute(query).fetchall()]
    assert duck == ["a@v3", "b@v2"]
    assert postgres_server.psql(query, schema_db).splitlines() == duck


def test_a_duckdb_clause_without_a_translation_is_refused() -> None:
    with pytest.raises(DialectError, match="QUALIFY.*registry/dialect.py"):
        POSTGRESQL.statements(
            "CREATE VIEW v_new AS SELECT * FROM t QUALIFY row_number() OVER () = 1;"
        )
