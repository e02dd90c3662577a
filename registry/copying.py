"""Copying a whole registry to another backend: a team that started on a laptop keeps its
history when it moves to PostgreSQL (and an auditor can take a PostgreSQL registry home
as a directory).

The copy is the same registry -- the same id, the same chain, the same signed records --
in another place; nothing is re-signed and nothing is rewritten. The source is verified
first (the whole chain and every row against its signed record), read in one snapshot,
every stored object is copied and re-hashed on the way, every row is written in one
transaction, and the destination is then verified from scratch: the chain and its
checkpoints, every row against its record, and every adapter, dataset and base model
version's files against their signatures. A destination that fails any of it is removed:
a copy is whole and verified, or it is not there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraledger.errors import InputError, UsageError, VerificationError

from . import schema
from .audit import utcnow
from .core import DB_FILE, published_checkpoints, registry_location
from .db import Connection, Database, DuckDatabase, lock_timeout_from_env
from .keys import KeyStore
from .postgres import PostgresConnection, PostgresDatabase
from .published import CheckpointFile
from .registry import (
    Registry,
    check_new_directory,
    check_new_store,
    open_store,
    store_location,
)
from .store import ArtifactStore, ObjectStorage, copy_hashing, staging_name
from .trust import TrustRoot


@dataclass(frozen=True)
class CopyReport:
    """What ``registry copy`` copied and verified."""

    source: str
    destination: str
    registry_id: str
    head_seq: int
    rows: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    bytes: int = 0
    verified: dict[str, int] = field(default_factory=dict)


def copy_registry(
    source: Path | str,
    destination: Path | str,
    *,
    store: Path | str | None = None,
    keys: KeyStore | None = None,
    trust_root: TrustRoot | None = None,
) -> CopyReport:
    """Copy the registry at ``source`` to ``destination`` (a new or empty directory, or an
    empty PostgreSQL database with its store in ``store``: a new or empty directory, or
    an ``s3://`` prefix that holds nothing), verifying both ends."""
    source, destination = registry_location(source), registry_location(destination)
    if isinstance(destination, str) and store is None:
        raise UsageError(
            "a copy into PostgreSQL needs --store: the new or empty directory (or s3:// "
            "prefix) for its artifacts"
        )
    if not isinstance(destination, str) and store is not None:
        raise UsageError("--store is for a copy into PostgreSQL; a directory keeps its own")
    src = Registry.open(source, keys=keys, trust_root=trust_root)
    head = src.verify_audit()
    src.verify_records()
    location: Path | str = Path(destination).absolute()
    if store is not None:
        location = store_location(store)
    files, objects = open_store(location, src.registry_id)
    made = not files.exists()
    db = _new_destination(destination, files, objects)
    try:
        report = _copy(src, db, files, objects, head.head_seq)
        copied = Registry.open(_address(db, files), keys=keys, trust_root=trust_root)
        report.verified.update(_verify(copied, head.head_seq, head.head_hash))
        return report
    except BaseException:
        _remove(db, files, made, objects)
        raise


def _address(db: Database, files: Path) -> Path | str:
    return db.url if isinstance(db, PostgresDatabase) else files


def _new_destination(
    destination: Path | str, files: Path, objects: ObjectStorage | None
) -> Database:
    """The destination's empty database, and its store checked (new or empty)."""
    if isinstance(destination, str):
        db: Database = PostgresDatabase(destination, lock_timeout=lock_timeout_from_env())
        with db.read() as conn:
            if schema.current_version(conn):
                raise InputError(
                    f"{db.location} already holds a registry; copy into an empty database"
                )
        check_new_store(files, objects)
        return db
    check_new_directory(files)
    building = files / f"{DB_FILE}.copy-{os.getpid()}"
    return DuckDatabase(building, lock_timeout=lock_timeout_from_env())


def _copy(
    src: Registry, db: Database, files: Path, objects: ObjectStorage | None, head_seq: int
) -> CopyReport:
    store = ArtifactStore(files / "objects", files / "tmp", objects)
    store.tmp.mkdir(parents=True, exist_ok=True)
    count = total = 0
    for digest in sorted(src.store.digests()):
        path = src.store.local(digest)
        if path is None:
            raise VerificationError(
                f"store object {digest} was listed but is gone from {src.store.location}; "
                "restore it from a backup before copying"
            )
        staged = store.tmp / staging_name("copy")
        with path.open("rb") as handle:
            copied = copy_hashing(handle, staged)
        if copied != digest:
            staged.unlink()
            raise VerificationError(
                f"store object {path} does not hash to its name (it hashes to {copied[:16]}…); "
                "restore it from a backup before copying"
            )
        total += staged.stat().st_size
        store.adopt(staged, digest)
        count += 1
    published = published_checkpoints(files, objects)
    if isinstance(published, CheckpointFile) and isinstance(src.audit.published, CheckpointFile):
        if src.audit.published.path.is_file():  # the lines as they are, in one copy
            shutil.copyfile(src.audit.published.path, published.path)
    else:
        for _, checkpoint in src.audit.published.everything():
            published.publish(checkpoint)
    where = objects.location if objects is not None else str(files)
    store_setting = where if isinstance(db, PostgresDatabase) else None
    rows = copy_rows(src.db, db, store=store_setting)
    if isinstance(db, DuckDatabase):
        os.replace(db.path, files / DB_FILE)
    return CopyReport(
        source=src.location,
        destination=db.location if isinstance(db, PostgresDatabase) else str(files),
        registry_id=src.registry_id,
        head_seq=head_seq,
        rows=rows,
        objects=count,
        bytes=total,
    )


BATCH = 20_000  # rows read and written at a time (a registry's samples run to millions)


def copy_rows(source: Database, destination: Database, *, store: str | None) -> dict[str, int]:
    """Every row of ``source`` into the empty ``destination``, migrated to the latest
    schema first, in one transaction (all of it, or nothing); ``registry_meta``'s
    ``store`` becomes ``store`` (None: no such setting, a directory registry). The source
    is read in one snapshot. Returns the rows copied by table."""
    rows: dict[str, int] = {}
    with destination.write() as out:
        schema.apply_pending(out, utcnow(), destination.dialect)
        out.execute("DELETE FROM schema_migrations")  # the source's own history comes next
        tables = _tables(out)
        with source.snapshot() as conn:
            for table, columns in tables.items():
                names = ", ".join(columns)
                cursor = conn.execute(f"SELECT {names} FROM {table}")
                rows[table] = 0
                while batch := cursor.fetchmany(BATCH):
                    if table == "registry_meta":
                        batch = [r for r in batch if r[0] != "store"]
                        batch += [("store", store)] if store is not None else []
                    _insert(out, table, columns, batch)
                    rows[table] += len(batch)
    return rows


def _insert(conn: Connection, table: str, columns: list[str], batch: list[Any]) -> None:
    if not batch:
        return
    if isinstance(conn, PostgresConnection):
        conn.copy_in(table, columns, batch)  # COPY: a million rows in seconds
        return
    placeholders = ", ".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", batch)


def _tables(conn: Connection) -> dict[str, list[str]]:
    """The registry's tables (not its views) and their columns, in order."""
    found: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_name = c.table_name "
        "AND t.table_schema = c.table_schema "
        "WHERE t.table_type = 'BASE TABLE' AND t.table_schema = current_schema() "
        "ORDER BY c.table_name, c.ordinal_position"
    ).fetchall():
        found.setdefault(str(table), []).append(str(column))
    return found


def _verify(copied: Registry, head_seq: int, head_hash: str) -> dict[str, int]:
    report = copied.verify_audit(expect_head=(head_seq, head_hash))
    verified: dict[str, Any] = {"audit_events": report.events}
    verified.update(copied.verify_records())
    versions = copied.adapters.list()
    for version in versions:
        copied.adapters.verify(version.ref)
    verified["adapter_signatures"] = len(versions)
    datasets = copied.datasets.list()
    for dataset in datasets:
        copied.datasets.verify(dataset.ref)
    verified["dataset_files"] = len(datasets)
    bases = copied.base_models.list()
    for base in bases:
        copied.base_models.verify(base.ref)
    verified["base_model_files"] = len(bases)
    return verified


def _remove(db: Database, files: Path, made: bool, objects: ObjectStorage | None) -> None:
    """Undo a copy that failed: its database rows and every file or object it wrote (an
    object store's prefix was empty; its cache here, verified objects, stays)."""
    if isinstance(db, PostgresDatabase):
        with contextlib.suppress(Exception), db.write() as conn:
            for table in _tables(conn):
                conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            for function in ("loraledger_append_only", "loraledger_revocation_only"):
                conn.execute(f"DROP FUNCTION IF EXISTS {function}() CASCADE")
    if objects is not None:
        with contextlib.suppress(Exception):
            objects.delete(list(objects.keys("")))
        return
    if made:
        shutil.rmtree(files, ignore_errors=True)
    elif files.is_dir():
        for entry in files.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


__all__ = ["CopyReport", "copy_registry", "copy_rows"]
