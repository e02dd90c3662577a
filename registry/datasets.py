"""Dataset versions: the training data's file, its records' hashes and Merkle root.

The trainer validates a JSONL file and analyses it (``DatasetAnalysis``: record hashes,
duplicates, PII findings, git provenance); the registry stores the file in the artifact
store and the analysis in the database, after checking that the staged copy is the file
that was analysed. Membership of a record is then provable against the version's Merkle
root without trusting the database: ``Datasets.prove`` returns an RFC 9162 inclusion
proof, verified before it is handed out.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from loraledger.errors import NotFound, VerificationError

from .audit import canonical_json, utcnow
from .core import Core
from .crosscheck import (
    ROW_DIGEST,
    by_subject,
    check_against_event,
    check_registrations,
    parsed,
    row_record,
    the_event,
)
from .crosscheck import record_sha256 as row_sha256
from .db import Connection
from .merkle import merkle_root, prove_membership
from .models import (
    AuditEvent,
    DatasetAnalysis,
    DatasetVersion,
    GitProvenance,
    PiiFinding,
    RecordProof,
)
from .permissions import Action
from .refs import Ref, next_version, resolve_version, validate_name
from .store import sha256_file

_COLUMNS = (
    "name, version, file_sha256, file_name, size_bytes, format, record_count, "
    "duplicate_count, merkle_root, license, source, pii, git, source_path, created_at, "
    "created_by"
)


def record_sha256(record: Any) -> str:
    """sha256 over a record's canonical JSON (sorted keys, no spaces, UTF-8)."""
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()


def _dataset(row: tuple[Any, ...]) -> DatasetVersion:
    pii = {k: PiiFinding(**v) for k, v in json.loads(row[11]).items()}
    git = GitProvenance(**json.loads(row[12])) if row[12] else None
    return DatasetVersion(
        name=row[0],
        version=row[1],
        file_sha256=row[2],
        file_name=row[3],
        size_bytes=row[4],
        format=row[5],
        record_count=row[6],
        duplicate_count=row[7],
        merkle_root=row[8],
        license=row[9],
        source=row[10],
        pii=pii,
        git=git,
        source_path=row[13],
        created_at=row[14],
        created_by=row[15],
    )


REGISTER = "dataset.register"


def _subject(version: DatasetVersion) -> str:
    return f"dataset:{version.ref}"


def _stated(version: DatasetVersion) -> dict[str, Any]:
    """What a version's ``dataset.register`` event states one by one -- in every release
    (the digest of the whole row came later)."""
    return {
        "file_sha256": version.file_sha256,
        "merkle_root": version.merkle_root,
        "records": version.record_count,
        "duplicates": version.duplicate_count,
        "license": version.license,
        "source": version.source,
        "pii_counts": {kind: finding.count for kind, finding in version.pii.items()},
        "git": version.git.model_dump(mode="json") if version.git else None,
        "actor": version.created_by,
        "subject": _subject(version),
    }


def check_registered(version: DatasetVersion, events: list[AuditEvent]) -> DatasetVersion:
    """``version`` (a row) against its one ``dataset.register`` event; returned when it
    matches, else :class:`VerificationError` naming the row and the field."""
    event = the_event("datasets", version.ref, events, REGISTER)
    check_against_event(
        "datasets", version.ref, _stated(version), event, row_record(version), ROW_DIGEST,
        "the row (file name, size, format, PII lines or source path)",
    )  # fmt: skip
    return version


class Datasets:
    def __init__(self, core: Core) -> None:
        self._core = core

    def register(
        self,
        path: Path,
        name: str,
        analysis: DatasetAnalysis,
        *,
        license: str,
        source: str,
        actor: str | None,
    ) -> DatasetVersion:
        """Store ``path`` as the next version of dataset ``name`` with its analysis."""
        validate_name(name, what="dataset name")
        core = self._core
        key = core.act_as(actor, Action.DATASET_REGISTER)
        root = merkle_root(list(analysis.record_hashes))
        core.remove_stale_files()
        with core.store.scratch("data") as scratch:
            staged = scratch / "data.jsonl"
            shutil.copyfile(path, staged)
            if sha256_file(staged) != analysis.file_sha256:
                raise VerificationError(
                    f"{path} changed while it was being registered; register it again"
                )
            core.store.adopt(staged, analysis.file_sha256)
            with core.change(key, Action.DATASET_REGISTER) as change:
                version = self._insert(
                    change.conn, name, path, analysis, root, license, source, key.name
                )
                written = self._row_in(change.conn, Ref(name, version))
                change.record(
                    "dataset.register",
                    f"dataset:{name}@v{version}",
                    {
                        ROW_DIGEST: row_sha256(row_record(written)),
                        "file_sha256": analysis.file_sha256,
                        "merkle_root": root,
                        "records": len(analysis.record_hashes),
                        "duplicates": len(analysis.duplicate_lines),
                        "license": license,
                        "source": source,
                        "pii_counts": {k: v.count for k, v in analysis.pii.items()},
                        "git": analysis.git.model_dump() if analysis.git else None,
                    },
                )
        return self.get(Ref(name, version))

    def _insert(
        self,
        conn: Connection,
        name: str,
        path: Path,
        analysis: DatasetAnalysis,
        root: str,
        license: str,
        source: str,
        actor: str,
    ) -> int:
        now = utcnow()
        version = next_version(conn, "datasets", name)
        conn.execute(
            "INSERT INTO artifacts VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [analysis.file_sha256, analysis.size_bytes, now],
        )
        pii = {k: v.model_dump(mode="json") for k, v in analysis.pii.items()}
        conn.execute(
            f"INSERT INTO datasets ({_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                name,
                version,
                analysis.file_sha256,
                path.name,
                analysis.size_bytes,
                analysis.format,
                len(analysis.record_hashes),
                len(analysis.duplicate_lines),
                root,
                license,
                source,
                canonical_json(pii),
                canonical_json(analysis.git.model_dump()) if analysis.git else None,
                str(path.resolve()),
                now,
                actor,
            ],
        )
        count = len(analysis.record_hashes)
        conn.execute(
            "INSERT INTO dataset_records SELECT ?, ?, unnest(?::BIGINT[]), "
            "unnest(?::BIGINT[]), unnest(?::VARCHAR[])",
            [
                name,
                version,
                list(range(1, count + 1)),
                list(analysis.record_lines),
                list(analysis.record_hashes),
            ],
        )
        return version

    # --- reading ----------------------------------------------------------------------

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        """The dataset versions (of ``name``), each checked against its audit event."""
        sql = f"SELECT {_COLUMNS} FROM datasets"
        params: list[Any] = []
        if name is not None:
            sql += " WHERE name = ?"
            params.append(validate_name(name, what="dataset name"))
        with self._core.db.read() as conn:
            versions = [
                _dataset(r)
                for r in conn.execute(sql + " ORDER BY name, version", params).fetchall()
            ]
            events = self._core.audited(conn, (REGISTER,))
        grouped = by_subject(events)
        for version in versions:
            check_registered(version, grouped.get(_subject(version), []))
        return versions

    def check_all(self, conn: Connection, events: builtins.list[AuditEvent]) -> int:
        """Every dataset row against ``events`` (the log's ``dataset.register`` events,
        verified by the caller), none missing or added; returns the rows checked."""
        rows = conn.execute(f"SELECT {_COLUMNS} FROM datasets ORDER BY name, version")
        versions = [_dataset(r) for r in rows.fetchall()]
        return check_registrations("datasets", versions, events, _subject, check_registered)

    def get(self, ref: Ref | str) -> DatasetVersion:
        with self._core.db.read() as conn:
            return self._get_in(conn, ref)

    def _get_in(self, conn: Connection, ref: Ref | str) -> DatasetVersion:
        """The version's row, checked against its ``dataset.register`` event: a licence,
        PII finding, Merkle root or source edited in the database is refused here, where
        gates, traces and exports read it."""
        version = self._row_in(conn, ref)
        events = self._core.audited(conn, (REGISTER,), _subject(version))
        self._core.refuse_void(
            events, f"dataset {version.ref}", "register it again under a new version"
        )
        return check_registered(version, events)

    def _row_in(self, conn: Connection, ref: Ref | str) -> DatasetVersion:
        pinned = resolve_version(
            conn, "datasets", ref, what="dataset", list_command="loraledger data list"
        )
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM datasets WHERE name = ? AND version = ?",
            [pinned.name, pinned.version],
        ).fetchone()
        assert row is not None  # resolve_version found it in the same connection
        return parsed("datasets", pinned, lambda: _dataset(row))

    def _hashes(self, conn: Connection, version: DatasetVersion) -> builtins.list[tuple[int, str]]:
        return [
            (int(r[0]), str(r[1]))
            for r in conn.execute(
                "SELECT line, sha256 FROM dataset_records WHERE dataset_name = ? AND version = ? "
                "ORDER BY position",
                [version.name, version.version],
            ).fetchall()
        ]

    def verify(self, ref: Ref | str) -> DatasetVersion:
        """Re-hash the stored file and recompute the Merkle root from the record rows."""
        with self._core.db.read() as conn:
            version = self._get_in(conn, ref)
            hashes = self._hashes(conn, version)
        path = self._core.store.local(version.file_sha256)
        if path is None:
            raise VerificationError(f"{version.ref}: the data file is missing from the store")
        if sha256_file(path) != version.file_sha256:
            raise VerificationError(f"{version.ref}: the stored data file was modified")
        if len(hashes) != version.record_count or (
            merkle_root([h for _, h in hashes]) != version.merkle_root
        ):
            raise VerificationError(
                f"{version.ref}: the record hashes no longer add up to the recorded Merkle root"
            )
        return version

    def prove(self, ref: Ref | str, record_hash: str) -> RecordProof:
        """Prove that the record with ``record_hash`` is in the version (first occurrence)."""
        with self._core.db.read() as conn:
            version = self._get_in(conn, ref)
            hashes = self._hashes(conn, version)
        positions = [i for i, (_, h) in enumerate(hashes, start=1) if h == record_hash]
        if not positions:
            raise NotFound(f"the record (sha256 {record_hash[:16]}…) is not in {version.ref}")
        membership = prove_membership([h for _, h in hashes], positions[0])
        if membership.root != version.merkle_root:
            raise VerificationError(
                f"{version.ref}: the record hashes no longer add up to the recorded Merkle root"
            )
        membership.verify()
        return RecordProof(
            dataset=version.ref,
            record_sha256=record_hash,
            line=hashes[positions[0] - 1][0],
            index=membership.index,
            size=membership.size,
            merkle_root=membership.root,
            proof=membership.proof,
        )
