"""A registry on PostgreSQL (registry/postgres.py): what the server itself enforces, the
writer lock, the URL rules and the placeholder rewrite, on a real server."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loraledger.registry import Registry, Role, audit, evaluations, schema
from loraledger.registry.audit import CHAIN_FORMAT, GENESIS_HASH, event_hash, utcnow
from loraledger.registry.dialect import HISTORY_TABLES, guard_triggers
from loraledger.registry.postgres import (
    WRITE_LOCK_KEY,
    PostgresDatabase,
    check_url,
    create_roles,
    psycopg_sql,
    role_statements,
)

from loraledger.errors import (
    AlreadyExists,
    LockTimeout,
    NotARegistry,
    PermissionDenied,
    StorageError,
    UsageError,
    VerificationError,
)
from tests.conftest import ADMIN, AUDITOR, ENGINEER, small_adapter
from tests.postgres import PASSWORD, Server
from tests.registry.helpers import Sample, replace_samples


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
                pytest.raises(PermissionDenied, match="refused 'loraledger': .*append-only"),
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


def test_writer_and_auditor_accounts_get_what_their_role_needs_and_no_more(
    registry: Registry, registered: object, postgres_server: Server, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    writer, auditor = f"writer_{suffix}", f"auditor_{suffix}"
    for name in (writer, auditor):
        postgres_server.psql(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
    assert isinstance(registry.db, PostgresDatabase)
    create_roles(registry.db, writers=[writer], auditors=[auditor])
    database = registry.db.url.rsplit("/", 1)[1]
    as_writer = Registry.open(postgres_server.url(database, writer), keys=registry.keys)
    as_auditor = Registry.open(postgres_server.url(database, auditor), keys=registry.keys)
    # a writer does what LoRA Ledger does: registers, revokes
    as_writer.adapters.register(
        small_adapter(tmp_path / "a2", seed=7), "bank-support", actor=ENGINEER
    )
    as_writer.identities.revoke(AUDITOR, reason="moved on", actor=ADMIN)
    # ... and cannot edit history, switch the triggers off or change the schema
    for statement in (
        "UPDATE audit_events SET actor = 'eve'",
        "DELETE FROM approvals",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "SET session_replication_role = replica",
        "CREATE TABLE sneaky (x INTEGER)",
        "DROP TABLE audit_checkpoints",
        "UPDATE datasets SET license = 'MIT'",
        "DELETE FROM eval_samples",
        # a future schema version, or a setting, that would lock everyone out
        f"INSERT INTO schema_migrations VALUES ({schema.LATEST_VERSION + 1}, 'x', now())",
        "INSERT INTO registry_meta VALUES ('store', '/elsewhere')",
    ):
        with (
            pytest.raises(PermissionDenied, match=f"refused '{writer}'"),
            as_writer.db.write() as conn,
        ):
            conn.execute(statement)
    # an auditor reads and verifies everything, and writes nothing
    assert as_auditor.verify_audit().events == registry.audit_head()[0]
    as_auditor.verify_records()
    assert [v.ref for v in as_auditor.adapters.list()] == ["bank-support@v1", "bank-support@v2"]
    with pytest.raises(PermissionDenied, match=f"refused '{auditor}'"):
        as_auditor.adapters.register(small_adapter(tmp_path / "a3", seed=8), "x", actor=ENGINEER)
    with (
        pytest.raises(PermissionDenied, match=f"refused '{auditor}'"),
        as_auditor.db.write() as conn,
    ):
        conn.execute("INSERT INTO registry_meta VALUES ('sneaked', 'in')")
    registry.verify_audit()
    registry.verify_records()


def test_an_identity_row_takes_its_revocation_and_nothing_else(registry: Registry) -> None:
    for statement in (
        "UPDATE identities SET public_key_pem = 'another key' WHERE name = 'rita'",
        "UPDATE identities SET role = 'admin' WHERE name = 'eve'",
        "DELETE FROM identities WHERE name = 'otto'",
        "TRUNCATE identities CASCADE",
    ):
        with (
            pytest.raises(PermissionDenied, match="refused 'loraledger': .*identit"),
            registry.db.write() as conn,
        ):
            conn.execute(statement)
    registry.identities.revoke(AUDITOR, reason="moved on", actor=ADMIN)
    with (
        pytest.raises(PermissionDenied, match="changes only by its revocation"),
        registry.db.write() as conn,
    ):
        conn.execute("UPDATE identities SET status = 'active' WHERE name = ?", [AUDITOR])
    registry.verify_audit()
    registry.verify_records()


def test_a_registry_guarded_by_an_earlier_release_gets_every_guard_when_it_migrates(
    registry: Registry, registered: object
) -> None:
    # schema 11 as an earlier release left it: triggers on nine history tables only
    earlier = ("audit_events", "audit_checkpoints", "signatures", "adapter_versions",
               "adapter_files", "approvals", "deployments", "gate_checks",
               "attestations")  # fmt: skip
    with registry.db.write() as conn:
        for table, names in guard_triggers().items():
            for name in names if table not in (*earlier, "policy_versions") else ():
                conn.execute(f"DROP TRIGGER {name} ON {table}")
        conn.execute("DROP TABLE policy_versions")  # schema 13's
        conn.execute("DELETE FROM schema_migrations WHERE version > 11")
    with pytest.raises(
        VerificationError, match="the trigger artifacts_append_only on artifacts is missing"
    ):
        registry.verify_records()
    migrated = Registry.open(registry.address, keys=registry.keys)
    assert migrated.audit_events()[-1].payload == {"from": 11, "to": schema.LATEST_VERSION}
    assert migrated.verify_records()["database_guards"] == sum(map(len, guard_triggers().values()))
    with pytest.raises(PermissionDenied, match="on datasets refused"), registry.db.write() as c:
        c.execute("UPDATE datasets SET license = 'MIT'")


def test_a_guard_switched_off_by_the_owner_is_found_and_db_roles_puts_it_back(
    registry: Registry, registered: object
) -> None:
    assert isinstance(registry.db, PostgresDatabase)
    with registry.db.write() as conn:  # the owner may; nobody given a writer's account can
        conn.execute("ALTER TABLE approvals DISABLE TRIGGER approvals_append_only")
    with pytest.raises(
        VerificationError,
        match=r"the trigger approvals_append_only on approvals is switched off in .*"
        r"run `loraledger db-roles` with the owner's account",
    ):
        registry.verify_records()
    with pytest.raises(VerificationError, match="is switched off"):
        registry.verify_records_since(registry.audit_head()[0])
    create_roles(registry.db)
    registry.verify_records()
    with pytest.raises(PermissionDenied, match="on approvals refused"), registry.db.write() as c:
        c.execute("DELETE FROM approvals")


def test_an_upgrade_by_a_writer_account_says_the_owner_runs_it(
    registry: Registry, postgres_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"writer_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
    assert isinstance(registry.db, PostgresDatabase)
    create_roles(registry.db, writers=[name])
    extra = schema.Migration(schema.LATEST_VERSION + 1, "notes", "CREATE TABLE notes (t VARCHAR)")
    shipped = schema.migrations()
    monkeypatch.setattr(schema, "migrations", lambda: [*shipped, extra])
    monkeypatch.setattr(schema, "LATEST_VERSION", extra.version)
    database = registry.db.url.rsplit("/", 1)[1]
    with pytest.raises(PermissionDenied, match="the database's owner upgrades it once"):
        Registry.open(postgres_server.url(database, name), keys=registry.keys)
    owner = Registry.open(registry.address, keys=registry.keys)  # the owner's account
    assert owner.audit_events()[-1].action == "registry.migrate"
    Registry.open(postgres_server.url(database, name), keys=registry.keys).verify_audit()


def test_db_roles_are_refused_to_an_account_that_does_not_own_the_database(
    registry: Registry, postgres_server: Server
) -> None:
    name = f"writer_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
    assert isinstance(registry.db, PostgresDatabase)
    create_roles(registry.db, writers=[name])
    database = registry.db.url.rsplit("/", 1)[1]
    writer_db = PostgresDatabase(postgres_server.url(database, name), lock_timeout=5)
    with pytest.raises(PermissionDenied, match="run `loraledger db-roles` as the database's owner"):
        create_roles(writer_db, auditors=[name])


def test_db_roles_for_a_login_role_that_does_not_exist_say_to_create_it(
    registry: Registry,
) -> None:
    assert isinstance(registry.db, PostgresDatabase)
    missing = f"nobody_{uuid.uuid4().hex[:8]}"
    with pytest.raises(PermissionDenied, match=r"create each login role first \(CREATE ROLE"):
        create_roles(registry.db, writers=[missing])


def test_role_names_are_plain_identifiers() -> None:
    with pytest.raises(UsageError, match="is not a plain PostgreSQL role name"):
        role_statements("reg", writers=['bob"; DROP TABLE x; --'])


def test_a_checkpoint_committed_after_a_read_began_is_not_taken_for_a_cut(
    registry: Registry,
) -> None:
    # Another machine commits and publishes while this read's snapshot is open: the
    # checkpoint file is ahead of the snapshot, which is not a truncated log.
    other = Registry.open(registry.address, keys=registry.keys)
    with registry.db.session(), registry.db.read() as conn:
        seq, _ = registry.audit.head(conn)
        elsewhere = threading.Thread(  # its own context: no share in this read's session
            target=other.identities.create, args=("late", Role.AUDITOR), kwargs={"actor": ADMIN}
        )
        elsewhere.start()
        elsewhere.join()
        assert registry.audit.last_published().seq > seq  # type: ignore[union-attr]
        registry.audit.check_tail(conn)
        assert registry.audit.head(conn)[0] == seq  # still the snapshot it began with


# The digests PostgreSQL computes in SQL (the audit chain's vouched hashes, the samples
# digest) against Python's, on one migrated database shared by the examples.

_PG_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",),
                                 exclude_characters="\x00"), max_size=12)  # fmt: skip


@pytest.fixture(scope="module")
def bare(postgres_server: Server) -> PostgresDatabase:
    url = postgres_server.create_database(f"bare_{uuid.uuid4().hex[:8]}")
    db = PostgresDatabase(url, lock_timeout=30)
    with db.write() as conn:
        schema.apply_pending(conn, utcnow(), db.dialect)
    return db


_PG_FIELDS = st.tuples(_PG_TEXT, _PG_TEXT, _PG_TEXT, _PG_TEXT)  # actor, action, subject, payload


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(written=_PG_FIELDS, edited=_PG_FIELDS, which=st.sets(st.integers(0, 3), min_size=1))
def test_postgresql_vouches_for_exactly_the_rows_hashed_as_written(
    bare: PostgresDatabase,
    written: tuple[str, str, str, str],
    edited: tuple[str, str, str, str],
    which: set[int],
) -> None:
    stored = tuple(edited[i] if i in which else written[i] for i in range(4))
    now = utcnow()
    with bare.write() as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("DELETE FROM audit_events")
        conn.execute(
            "INSERT INTO audit_events VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
            [now, *stored, GENESIS_HASH, event_hash(1, GENESIS_HASH, now, *written)],
        )
    with bare.read() as conn:
        ((_, _, _, vouched),) = conn.execute(
            audit._VOUCHED_SQL_POSTGRES, [CHAIN_FORMAT, 1]
        ).fetchall()
    assert vouched == (stored == written)  # every text, control characters included


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["t1", "t2", "tâsk\n", "T1"]), st.integers(-5, 2**31 - 1),
                  st.sampled_from(["none", "strict-match", "\x1f", "é"]), _PG_TEXT, _PG_TEXT,
                  st.one_of(st.none(), st.booleans()), st.one_of(st.none(), _PG_TEXT)),
        min_size=1, max_size=8, unique_by=lambda s: (s[0], s[2], s[1]),
    )
)  # fmt: skip
def test_postgresql_computes_the_samples_digest_python_and_duckdb_compute(
    bare: PostgresDatabase, samples: list[Sample]
) -> None:
    with bare.write() as conn:
        conn.execute("SET LOCAL session_replication_role = replica")  # history's guard off
        replace_samples(conn, samples)
    with bare.read() as conn:
        assert evaluations.samples_digests(conn) == evaluations.samples_digests_in_python(conn)
