"""Base models, recorded by identity rather than stored.

A base model version is the per-file sha256 manifest of its directory (hashed with
OpenSSF model-signing's hashing, the same digests as adapter signatures) plus its origin.
Weights are large and stay where they are; :meth:`BaseModels.verify` re-hashes them
against the manifest, and every load for training or evaluation goes through it.
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

from loraledger.errors import VerificationError

from .audit import canonical_json, utcnow
from .core import Core
from .crosscheck import (
    ROW_DIGEST,
    by_subject,
    check_against_event,
    check_registrations,
    parsed,
    record_sha256,
    row_record,
    the_event,
)
from .db import Connection
from .manifest import describe_differences
from .models import AuditEvent, BaseModelVersion, FileEntry
from .permissions import Action
from .refs import Ref, next_version, resolve_version, validate_name
from .signing import hash_directory

_COLUMNS = (
    "name, version, digest, kind, location, architecture, origin, file_count, "
    "total_bytes, created_at, created_by"
)


def _base(row: tuple[Any, ...], files: tuple[FileEntry, ...] = ()) -> BaseModelVersion:
    return BaseModelVersion(
        name=row[0],
        version=row[1],
        digest=row[2],
        kind=row[3],
        location=row[4],
        architecture=row[5],
        origin=json.loads(row[6]),
        file_count=row[7],
        total_bytes=row[8],
        created_at=row[9],
        created_by=row[10],
        files=files,
    )


REGISTER = "base.register"


def _subject(base: BaseModelVersion) -> str:
    return f"base:{base.ref}"


def _stated(base: BaseModelVersion) -> dict[str, Any]:
    """What a version's ``base.register`` event states one by one, in every release."""
    return {
        "digest": base.digest,
        "kind": base.kind,
        "origin": base.origin,
        "location": base.location,
        "files": {f.path: f.sha256 for f in base.files},
        "actor": base.created_by,
        "subject": _subject(base),
    }


def check_registered(base: BaseModelVersion, events: list[AuditEvent]) -> BaseModelVersion:
    """``base`` (a row with its file rows) against its one ``base.register`` event;
    returned when it matches, else :class:`VerificationError` naming the field."""
    event = the_event("base_models", base.ref, events, REGISTER)
    check_against_event(
        "base_models", base.ref, _stated(base), event, row_record(base), ROW_DIGEST,
        "the row and its file rows (architecture, file count, sizes)",
    )  # fmt: skip
    return base


class BaseModels:
    def __init__(self, core: Core) -> None:
        self._core = core

    def register(
        self,
        directory: Path,
        name: str,
        *,
        kind: str,
        architecture: str,
        origin: dict[str, Any],
        actor: str | None,
    ) -> BaseModelVersion:
        """Record ``directory``'s files (hashed now) as the next version of ``name``."""
        validate_name(name, what="base model name")
        core = self._core
        key = core.act_as(actor, Action.BASE_REGISTER)
        manifest = hash_directory(directory)
        sizes = {p: (directory / p).stat().st_size for p in manifest.files}
        with core.change(key, Action.BASE_REGISTER) as change:
            conn = change.conn
            version = next_version(conn, "base_models", name)
            conn.execute(
                f"INSERT INTO base_models ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    name,
                    version,
                    manifest.digest,
                    kind,
                    str(directory.resolve()),
                    architecture,
                    canonical_json(origin),
                    len(manifest.files),
                    sum(sizes.values()),
                    utcnow(),
                    key.name,
                ],
            )
            conn.executemany(
                "INSERT INTO base_model_files VALUES (?, ?, ?, ?, ?)",
                [[name, version, p, d, sizes[p]] for p, d in sorted(manifest.files.items())],
            )
            written = self._get_unchecked(conn, Ref(name, version))
            change.record(
                REGISTER,
                f"base:{name}@v{version}",
                {
                    ROW_DIGEST: record_sha256(row_record(written)),
                    "digest": manifest.digest,
                    "kind": kind,
                    "origin": origin,
                    "location": str(directory.resolve()),
                    "files": manifest.files,
                },
            )
        return self.get(Ref(name, version))

    def list(self) -> list[BaseModelVersion]:
        """Every base model version, each checked against its audit event."""
        with self._core.db.read() as conn:
            bases = self._all_in(conn)
            events = self._core.audited(conn, (REGISTER,))
        grouped = by_subject(events)
        for base in bases:
            check_registered(base, grouped.get(_subject(base), []))
        return bases

    def _all_in(self, conn: Connection) -> builtins.list[BaseModelVersion]:
        files: dict[tuple[str, int], builtins.list[FileEntry]] = {}
        for name, number, path, digest, size in conn.execute(
            "SELECT base_name, version, path, sha256, size_bytes FROM base_model_files "
            "ORDER BY path"
        ).fetchall():
            files.setdefault((name, number), []).append(FileEntry(path=path, sha256=digest,
                                                                  size_bytes=size))  # fmt: skip
        rows = conn.execute(f"SELECT {_COLUMNS} FROM base_models ORDER BY name, version")
        return [_base(r, tuple(files.get((r[0], r[1]), ()))) for r in rows.fetchall()]

    def check_all(self, conn: Connection, events: builtins.list[AuditEvent]) -> int:
        """Every base model row, with its file rows, against ``events`` (the log's
        ``base.register`` events, verified by the caller); returns the rows checked."""
        return check_registrations(
            "base_models", self._all_in(conn), events, _subject, check_registered
        )

    def get(self, ref: Ref | str) -> BaseModelVersion:
        def lookup() -> BaseModelVersion:
            with self._core.db.read() as conn:
                return self._get_in(conn, ref)

        return self._core.db.memo(("base", str(ref)), lookup)

    def _get_in(self, conn: Connection, ref: Ref | str) -> BaseModelVersion:
        """The version's row and file rows, checked against its ``base.register`` event:
        a digest, location, origin or file edited in the database is refused here."""
        base = self._get_unchecked(conn, ref)
        events = self._core.audited(conn, (REGISTER,), _subject(base))
        self._core.refuse_void(
            events, f"base model {base.ref}", "register it again under a new version"
        )
        return check_registered(base, events)

    def _get_unchecked(self, conn: Connection, ref: Ref | str) -> BaseModelVersion:
        pinned = resolve_version(
            conn, "base_models", ref, what="base model", list_command="loraledger base list"
        )
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM base_models WHERE name = ? AND version = ?",
            [pinned.name, pinned.version],
        ).fetchone()
        assert row is not None  # resolve_version found it in the same connection
        files = tuple(
            FileEntry(path=r[0], sha256=r[1], size_bytes=r[2])
            for r in conn.execute(
                "SELECT path, sha256, size_bytes FROM base_model_files "
                "WHERE base_name = ? AND version = ? ORDER BY path",
                [pinned.name, pinned.version],
            ).fetchall()
        )
        return parsed("base_models", pinned, lambda: _base(row, files))

    def verify(self, ref: Ref | str) -> BaseModelVersion:
        """Re-hash the base's files where they live; raise naming what changed."""
        base = self.get(ref)
        location = Path(base.location)
        if not location.is_dir():
            raise VerificationError(
                f"{base.ref}: its files are no longer at {location}; restore them or register "
                "the base again"
            )
        actual = hash_directory(location).files
        recorded = {f.path: f.sha256 for f in base.files}
        problems = describe_differences(recorded, actual)
        if problems:
            raise VerificationError(
                f"{base.ref}: the files at {location} are not the registered base ({problems})"
            )
        return base
