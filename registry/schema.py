"""The registry's schema version and its forward-only migrations.

Migrations are numbered SQL files in ``registry/sql/`` (``001_initial.sql``, ...). A
registry records each applied migration in ``schema_migrations``; opening a registry
whose newest migration is unknown to this code is refused rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from loraledger.errors import NotARegistry, SchemaTooNew

from .db import Connection
from .dialect import DUCKDB, Dialect


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """All migrations shipped with this code, in order."""
    found: list[Migration] = []
    for entry in resources.files("loraledger.registry").joinpath("sql").iterdir():
        stem = entry.name.removesuffix(".sql")
        if entry.name.endswith(".sql") and stem[:3].isdigit():
            found.append(Migration(int(stem[:3]), stem[4:], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..N: {[m.version for m in found]}")
    return found


LATEST_VERSION = len(migrations())


def current_version(conn: Connection) -> int:
    """The schema version recorded in the database; 0 for an empty database."""
    has_table = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations' "
        "AND table_schema = current_schema()"
    ).fetchone()
    if not has_table or has_table[0] == 0:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def check_compatible(conn: Connection, where: str) -> int:
    """Return the database's schema version, refusing one newer than this code."""
    version = current_version(conn)
    if version == 0:
        raise NotARegistry(
            f"{where} holds no LoRA Ledger schema; run `loraledger init` to create a registry"
        )
    if version > LATEST_VERSION:
        raise SchemaTooNew(
            f"the registry at {where} has schema version {version}, newer than the "
            f"{LATEST_VERSION} this loraledger understands; upgrade loraledger to use it"
        )
    return version


def apply_pending(conn: Connection, now: object, dialect: Dialect = DUCKDB) -> list[Migration]:
    """Apply, inside the caller's transaction, every migration newer than the database,
    then what the dialect adds to the whole schema (PostgreSQL's guards on history)."""
    version = current_version(conn)
    pending = [m for m in migrations() if m.version > version]
    for migration in pending:
        for statement in dialect.statements(migration.sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
            [migration.version, migration.name, now],
        )
    if pending:
        for statement in dialect.guards():
            conn.execute(statement)
    return pending
