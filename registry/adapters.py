"""Adapter versions: register, read, verify and hand out PEFT adapter directories.

Registering copies the directory into the registry's staging area, validates the copy,
signs it with the actor's key in the OpenSSF model-signing format (which hashes every
file), moves the files into the content-addressed store and then commits the version,
its files, its signature and the audit event in one transaction.

Verification lives here and only here: :meth:`Adapters.verify`, :meth:`Adapters.fetch`
and :meth:`Adapters.open_verified` all re-hash the stored bytes and check the signature
against the signer's registered public key before anything is handed out.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from loraledger.errors import InputError, NotFound, VerificationError, WrongBase
from loraledger.paths import output_directory

from .adapter_dir import (
    CONFIG_FILE,
    AdapterDirectory,
    Limits,
    check_safetensors,
    read_adapter_config,
    refuse_pickle,
)
from .attestations import Attestations, provenance_statement, recorded
from .audit import utcnow
from .core import Core
from .crosscheck import RESTORE, check_row, parsed
from .db import Connection
from .manifest import PREDICATE_TYPE, Manifest
from .models import (
    AdapterVersion,
    AuditEvent,
    BaseModelVersion,
    FileEntry,
    TrainingRun,
    VerificationReport,
)
from .permissions import Action
from .refs import Ref, next_version, resolve_version, validate_name
from .signing import sign_files, verify_files
from .trust import held_key, signing_key

_VERSION_SQL = """
SELECT v.name, v.version, v.digest, v.peft_type, v.base_model_name, v.file_count,
       v.total_bytes, v.source_path, v.created_at, v.created_by, v.signature_id,
       s.signer, s.key_fingerprint, s.bundle_sha256, v.adapter_config
FROM adapter_versions v JOIN signatures s ON s.id = v.signature_id
"""


def _version(row: tuple[Any, ...], files: tuple[FileEntry, ...] = ()) -> AdapterVersion:
    return parsed(
        "adapter_versions", f"{row[0]}@v{row[1]}", lambda: AdapterVersion(**_fields(row, files))
    )


def _fields(row: tuple[Any, ...], files: tuple[FileEntry, ...]) -> dict[str, Any]:
    return {
        "name": row[0],
        "version": row[1],
        "digest": row[2],
        "peft_type": row[3],
        "base_model_name": row[4],
        "file_count": row[5],
        "total_bytes": row[6],
        "source_path": row[7],
        "created_at": row[8],
        "created_by": row[9],
        "signature_id": row[10],
        "signer": row[11],
        "signer_key_fingerprint": row[12],
        "bundle_sha256": row[13],
        "adapter_config": json.loads(row[14]),
        "files": files,
    }


class Adapters:
    def __init__(self, core: Core, attestations: Attestations) -> None:
        self._core = core
        self._attestations = attestations

    # --- registering ------------------------------------------------------------------

    def register(
        self,
        directory: Path,
        name: str,
        *,
        actor: str | None,
        on_bytes: Callable[[int], None] | None = None,
        training_run: TrainingRun | None = None,
        limits: Limits | None = None,
        link: bool = False,
    ) -> AdapterVersion:
        """Validate, sign and store ``directory`` as the next version of ``name``.

        ``on_bytes`` reports copy progress (bytes per chunk) for a progress bar.
        ``link``: hard-link the files into the store instead of copying them, where the
        file system allows -- only for a directory nothing will write again: the stored
        files are the same files (made read-only), and one rewritten in place would
        change the stored version, which verification then refuses.
        ``training_run`` is the provenance record the trainer made; it is stored in the
        same transaction, linked to the new version.
        """
        validate_name(name, what="adapter name")
        core = self._core
        key = core.act_as(actor, Action.ADAPTER_REGISTER)
        scanned = AdapterDirectory.scan(directory, limits)
        core.remove_stale_files()
        store = core.store
        with store.scratch("reg") as scratch:
            staged = scratch / name  # the directory name becomes the bundle's subject name
            with ThreadPoolExecutor(1) as pool:  # hashed as copied, while model-signing loads
                copying = pool.submit(scanned.copy_to, staged, on_bytes, link=link)
                from model_signing import signing  # noqa: F401

                copied = copying.result()
            _, raw_config = read_adapter_config(
                staged / CONFIG_FILE, shown_as=directory / CONFIG_FILE
            )
            for entry in scanned.files:
                refuse_pickle(staged / entry.relpath, shown_as=directory / entry.relpath)
                if entry.relpath.endswith(".safetensors"):
                    check_safetensors(staged / entry.relpath, shown_as=directory / entry.relpath)
            manifest = sign_files(name, copied, key, scratch / "bundle.sig")
            for relpath, digest in manifest.files.items():
                store.adopt(staged / relpath, digest)
            bundle_sha = store.put_bytes((scratch / "bundle.sig").read_bytes())

            sizes = {f.relpath: f.size_bytes for f in scanned.files}
            created = utcnow()
            with core.change(key, Action.ADAPTER_REGISTER) as change:
                version = self._insert_version(
                    change.conn,
                    created,
                    name,
                    directory,
                    manifest,
                    bundle_sha,
                    sizes,
                    raw_config,
                    signer=key.name,
                    signer_fingerprint=key.fingerprint,
                )
                attestation = None
                if training_run is not None:
                    _insert_training_run(change.conn, name, version, training_run)
                    attestation = self._attestations.insert_in(
                        change.conn,
                        "provenance",
                        f"{name}@v{version}",
                        manifest.digest,
                        provenance_statement(manifest.files, training_run, core.registry_id),
                        key,
                        utcnow(),
                    )
                change.record(
                    "adapter.register",
                    f"adapter:{name}@v{version}",
                    {
                        "digest": manifest.digest,
                        "bundle_sha256": bundle_sha,
                        "files": manifest.files,
                        "total_bytes": sum(sizes.values()),
                        "source_path": str(directory.resolve()),
                        # the whole record, so the chain protects it like the rest
                        "training_run": (
                            training_run.model_dump(mode="json") if training_run else None
                        ),
                        "provenance_attestation": (recorded(attestation) if attestation else None),
                        # the rest of the row, so every column is checked against the chain
                        "adapter_config": raw_config,
                        "sizes": sizes,
                        "created_at": created.isoformat(),
                    },
                )
        return self.get(Ref(name, version))

    def _insert_version(
        self,
        conn: Connection,
        now: datetime,
        name: str,
        directory: Path,
        manifest: Manifest,
        bundle_sha: str,
        sizes: dict[str, int],
        raw_config: dict[str, Any],
        *,
        signer: str,
        signer_fingerprint: str,
    ) -> int:
        conn.execute(
            "INSERT INTO adapters VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [name, now, signer]
        )
        version = next_version(conn, "adapter_versions", name)
        artifacts = [[d, sizes[p], now] for p, d in manifest.files.items()]
        artifacts.append([bundle_sha, self._core.store.path_of(bundle_sha).stat().st_size, now])
        conn.executemany("INSERT INTO artifacts VALUES (?, ?, ?) ON CONFLICT DO NOTHING", artifacts)
        signature_id = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO signatures VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                signature_id,
                PREDICATE_TYPE,
                bundle_sha,
                signer,
                signer_fingerprint,
                manifest.digest,
                now,
            ],
        )
        conn.execute(
            "INSERT INTO adapter_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                name,
                version,
                manifest.digest,
                signature_id,
                str(raw_config["peft_type"]),
                raw_config.get("base_model_name_or_path"),
                json.dumps(raw_config, sort_keys=True),
                len(manifest.files),
                sum(sizes.values()),
                str(directory.resolve()),
                now,
                signer,
            ],
        )
        conn.executemany(
            "INSERT INTO adapter_files VALUES (?, ?, ?, ?, ?)",
            [[name, version, p, d, sizes[p]] for p, d in sorted(manifest.files.items())],
        )
        return version

    # --- reading ----------------------------------------------------------------------

    def list(self, name: str | None = None) -> list[AdapterVersion]:
        sql = _VERSION_SQL
        params: list[Any] = []
        if name is not None:
            sql += " WHERE v.name = ?"
            params.append(validate_name(name, what="adapter name"))
        sql += " ORDER BY v.name, v.version"
        with self._core.db.read() as conn:
            return [_version(r) for r in conn.execute(sql, params).fetchall()]

    def get(self, ref: Ref | str) -> AdapterVersion:
        def lookup() -> AdapterVersion:
            with self._core.db.read() as conn:
                return self._get_in(conn, ref)

        return self._core.db.memo(("adapter", str(ref)), lookup)

    def _get_in(self, conn: Connection, ref: Ref | str) -> AdapterVersion:
        pinned = resolve_version(
            conn, "adapter_versions", ref, what="adapter", list_command="loraledger adapters list"
        )
        name, version = pinned.name, pinned.version
        row = conn.execute(
            _VERSION_SQL + " WHERE v.name = ? AND v.version = ?", [name, version]
        ).fetchone()
        if row is None:
            raise VerificationError(
                f"{name}@v{version} has no signature record; the registry was tampered with"
            )
        files = tuple(
            FileEntry(path=r[0], sha256=r[1], size_bytes=r[2])
            for r in conn.execute(
                "SELECT path, sha256, size_bytes FROM adapter_files "
                "WHERE adapter_name = ? AND version = ? ORDER BY path",
                [name, version],
            ).fetchall()
        )
        return _version(row, files)

    def registration(self, ref: Ref | str) -> AuditEvent:
        """The version's ``adapter.register`` audit event -- intact up to the checkpoint its
        registrant signed -- after checking the version's row against it: who registered
        the version (for separation of duties), its digest, signature bundle and files
        come from here, never from the row alone."""
        return self._core.db.memo(("registration", str(ref)), lambda: self._registration(ref))

    def _registration(self, ref: Ref | str) -> AuditEvent:
        version = self.get(ref)
        with self._core.db.read() as conn:
            events = self._core.audited(conn, ("adapter.register",), f"adapter:{version.ref}")
        return check_registration(version, events)

    def check_all(self, conn: Connection, events: builtins.list[AuditEvent]) -> int:
        """Every version row and its file rows against ``events`` (the log's
        ``adapter.register`` events, verified by the caller); returns the rows checked."""
        by_subject: dict[str, builtins.list[AuditEvent]] = {}
        for event in events:
            by_subject.setdefault(event.subject, []).append(event)
        files: dict[tuple[str, int], builtins.list[FileEntry]] = {}
        for name, number, path, digest, size in conn.execute(
            "SELECT adapter_name, version, path, sha256, size_bytes FROM adapter_files "
            "ORDER BY path"
        ).fetchall():
            files.setdefault((name, number), []).append(
                FileEntry(path=path, sha256=digest, size_bytes=size)
            )
        versions = [
            _version(r, tuple(files.pop((r[0], r[1]), ())))
            for r in conn.execute(_VERSION_SQL + " ORDER BY v.name, v.version").fetchall()
        ]
        identities = self._core.trusted_identities(conn)
        signatures = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT id, format, subject_digest, created_at FROM signatures"
            ).fetchall()
        }
        for version in versions:
            check_registration(version, by_subject.pop(f"adapter:{version.ref}", []))
            held_key(
                f"signatures row {version.signature_id}",
                version.signer,
                identities.get(version.signer),
                version.signer_key_fingerprint,
            )
            predicate, subject, signed_at = signatures[version.signature_id]
            check_row(
                "signatures",
                version.signature_id,
                {
                    "format": predicate,
                    "subject_digest": subject,
                    "created_at": signed_at.isoformat(),
                },
                {
                    "format": PREDICATE_TYPE,
                    "subject_digest": version.digest,
                    "created_at": version.created_at.isoformat(),
                },
                f"the signed version {version.ref} and its signer's registered key",
            )
        if files:
            name, number = next(iter(files))
            raise VerificationError(
                f"adapter_files rows of {name}@v{number} belong to no signed version; {RESTORE}"
            )
        if by_subject:
            subject, found = next(iter(by_subject.items()))
            raise VerificationError(
                f"adapter_versions row {subject.removeprefix('adapter:')}, recorded by audit "
                f"event #{found[0].seq}, is missing from the database; {RESTORE}"
            )
        return len(versions)

    def training_run(self, ref: Ref | str) -> TrainingRun | None:
        """The provenance record of the run that produced the version, if it was trained
        by LoRA Ledger (None for an adapter registered from elsewhere).

        The stored record must equal the one in the version's audit event (which the
        hash chain protects); a record edited in the database is refused.
        """
        return self._core.db.memo(("training run", str(ref)), lambda: self._run_of(ref))

    def _run_of(self, ref: Ref | str) -> TrainingRun | None:
        version = self.get(ref)
        with self._core.db.read() as conn:
            row = conn.execute(
                f"SELECT record, {_RUN_INDEX} FROM training_runs "
                "WHERE adapter_name = ? AND adapter_version = ?",
                [version.name, version.version],
            ).fetchone()
            uses = conn.execute(
                "SELECT d.dataset_name, d.version, d.file_sha256, d.merkle_root "
                "FROM training_run_datasets d JOIN training_runs r ON r.id = d.run_id "
                "WHERE r.adapter_name = ? AND r.adapter_version = ? "
                "ORDER BY d.dataset_name, d.version",
                [version.name, version.version],
            ).fetchall()
        logged = self.registration(version.ref).payload.get("training_run")
        if row is None:
            if logged is not None:
                raise VerificationError(
                    f"training_runs row of {version.ref}, recorded by its registration, is "
                    f"missing from the database; {RESTORE}"
                )
            return None
        record = TrainingRun.model_validate_json(row[0])
        if logged is None or TrainingRun.model_validate(logged) != record:
            raise VerificationError(
                f"{version.ref}: the training-run record differs from the one in the audit "
                "log; the registry was tampered with"
            )
        # the columns that index the record (read by SQL: impact, dataset users, the
        # lineage view) must say what the record says
        indexed = dict(zip(_RUN_INDEX.split(", "), row[1:], strict=True))
        indexed["datasets"] = [list(use) for use in uses]
        check_row("training_runs", record.id, indexed, _index_of(record), "its audited record")
        return record

    def require_base(self, ref: Ref | str, base: BaseModelVersion) -> None:
        """Refuse to use an adapter on a base other than the one it was trained on."""
        version = self.get(ref)
        run = self.training_run(version.ref)
        if run is not None:
            if run.base_digest != base.digest:
                raise WrongBase(
                    f"{version.ref} was trained on {run.base_ref} (digest "
                    f"{run.base_digest[:16]}…), not on {base.ref} (digest {base.digest[:16]}…); "
                    f"load it on {run.base_ref}"
                )
            return
        named = version.base_model_name
        if named not in (base.ref, base.name, base.location):
            raise WrongBase(
                f"{version.ref} names base {named!r} in its adapter_config.json, not "
                f"{base.ref}; load it on the base it was made for"
            )

    def signature(self, ref: Ref | str) -> bytes:
        """The version's model-signing bundle (JSON bytes), checked against its digest."""
        return self._core.store.read_verified(self.get(ref).bundle_sha256)

    # --- verifying --------------------------------------------------------------------

    def verify(self, ref: Ref | str) -> VerificationReport:
        """Re-hash the stored files and check the signature; raise on any mismatch."""
        started = time.perf_counter()
        version = self._verify_into(ref, None)
        return self._report(version, started)

    def fetch(self, ref: Ref | str, dest: Path) -> VerificationReport:
        """Write the version's files to ``dest`` (new or empty), verifying the very copy
        that is handed out; on any failure nothing is left at ``dest``."""
        started = time.perf_counter()
        output_directory(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise InputError("exists and is not an empty directory; choose a new one", path=dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.parent / f".{dest.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            version = self._verify_into(ref, partial)
            if dest.exists():
                dest.rmdir()
            os.replace(partial, dest)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return self._report(version, started)

    @contextmanager
    def open_verified(self, ref: Ref | str) -> Iterator[tuple[AdapterVersion, Path]]:
        """A verified private copy of the version's directory, removed afterwards.

        The one way the trainer and the harness load an adapter for use.
        """
        with self._core.store.scratch("open") as scratch:
            version = self._verify_into(ref, scratch / "adapter")
            yield version, scratch / "adapter"

    def _verify_into(self, ref: Ref | str, directory: Path | None) -> AdapterVersion:
        """Check the records, then the files -- copied out to ``directory`` and verified
        as written, or (None) hashed where they are stored -- against the signature.
        The files are read while the records are checked (hashing lets go of the GIL): a
        verify takes little more than its hashing."""
        version = self.get(ref)
        store = self._core.store
        files = {f.path: f.sha256 for f in version.files}
        with ThreadPoolExecutor(1) as pool:
            reading = (
                pool.submit(store.hash_objects, files)
                if directory is None
                else pool.submit(store.copy_out, files, directory)
            )
            bundle, public_pem = self._check_records(version)
            actual = reading.result()
        verify_files(actual, bundle, public_pem)
        # the signed files must also be the registered ones: re-signing swapped weights
        # with the signer's own key leaves the registrant's audit event behind
        self.registration(version.ref)
        return version

    def _check_records(self, version: AdapterVersion) -> tuple[bytes, str]:
        """The version's signer, key, digest and files against its records and signed
        bundle; returns the bundle and the signer's public key."""
        core = self._core
        with core.db.read() as conn:
            subject_digest = conn.execute(
                "SELECT subject_digest FROM signatures WHERE id = ?", [version.signature_id]
            ).fetchone()
        ref_text = version.ref
        try:
            signer = core.identity(version.signer)
        except NotFound:
            raise VerificationError(
                f"{ref_text} was signed by unknown identity {version.signer!r}"
            ) from None
        bundle = core.store.read_verified(version.bundle_sha256)
        manifest = Manifest.from_bundle(bundle)
        if not (manifest.digest == version.digest == (subject_digest or [None])[0]):
            raise VerificationError(
                f"{ref_text}: the recorded digest does not match the signed digest"
            )
        _compare_files(ref_text, {f.path: f.sha256 for f in version.files}, manifest.files)
        # the signature's place: the registration event, in the chain its checkpoint signs
        public_pem = signing_key(
            ref_text,
            version.signer,
            signer,
            version.signer_key_fingerprint,
            self.registration(version.ref).seq,
            "the signature is not trusted: re-register the adapter with a valid key",
        )
        return bundle, public_pem

    @staticmethod
    def _report(version: AdapterVersion, started: float) -> VerificationReport:
        return VerificationReport(
            ref=version.ref,
            digest=version.digest,
            signer=version.signer,
            signer_key_fingerprint=version.signer_key_fingerprint,
            files_verified=len(version.files),
            bytes_verified=sum(f.size_bytes for f in version.files),
            seconds=time.perf_counter() - started,
        )


def check_registration(version: AdapterVersion, events: list[AuditEvent]) -> AuditEvent:
    """The version's row (who registered it, its digest, bundle and files) against its one
    ``adapter.register`` event; returns the event."""
    if len(events) != 1:
        raise VerificationError(
            f"adapter_versions row {version.ref} has {len(events)} adapter.register audit "
            f"events, not one; {RESTORE}"
        )
    (event,) = events
    recorded: dict[str, Any] = {
        "created_by": event.actor,
        "signer": event.actor,
        "digest": event.payload.get("digest"),
        "bundle_sha256": event.payload.get("bundle_sha256"),
        "files": event.payload.get("files"),
    }
    stored: dict[str, Any] = {
        "created_by": version.created_by,
        "signer": version.signer,
        "digest": version.digest,
        "bundle_sha256": version.bundle_sha256,
        "files": {f.path: f.sha256 for f in version.files},
    }
    payload = event.payload
    files = payload.get("files")
    recorded.update(
        total_bytes=payload.get("total_bytes"),
        source_path=payload.get("source_path"),
        file_count=len(files) if isinstance(files, dict) else None,
    )
    stored.update(
        total_bytes=version.total_bytes,
        source_path=version.source_path,
        file_count=version.file_count,
    )
    # Recorded since issue #17 (events before it lack them): the rest of the row.
    for key, value in (
        ("adapter_config", version.adapter_config),
        ("sizes", {f.path: f.size_bytes for f in version.files}),
        ("created_at", version.created_at.isoformat()),
    ):
        if key in payload:
            recorded[key] = payload[key]
            stored[key] = value
    check_row("adapter_versions", version.ref, stored, recorded, f"audit event #{event.seq}")
    # the columns taken from adapter_config.json must be what it says
    check_row(
        "adapter_versions",
        version.ref,
        {"peft_type": version.peft_type, "base_model_name": version.base_model_name},
        {
            "peft_type": str(version.adapter_config.get("peft_type")),
            "base_model_name": version.adapter_config.get("base_model_name_or_path"),
        },
        "its adapter_config",
    )
    return event


def _compare_files(ref: str, recorded: dict[str, str], signed: dict[str, str]) -> None:
    """The version's file rows must be exactly the signed files, digest for digest."""
    problems = []
    missing = sorted(set(signed) - set(recorded))
    extra = sorted(set(recorded) - set(signed))
    if missing:
        problems.append(f"signed but not recorded: {', '.join(missing)}")
    if extra:
        problems.append(f"recorded but not signed: {', '.join(extra)}")
    changed = sorted(p for p in set(signed) & set(recorded) if signed[p] != recorded[p])
    if changed:
        problems.append(f"recorded digest differs from the signed one: {', '.join(changed)}")
    if problems:
        raise VerificationError(
            f"{ref}: file records do not match the signature ({'; '.join(problems)})"
        )


_RUN_INDEX = (
    "id, config_sha256, base_name, base_version, base_digest, code_commit, code_dirty, seed, "
    "created_by"
)


def _index_of(run: TrainingRun) -> dict[str, Any]:
    """What a training run's index columns and dataset rows must hold for ``run``."""
    base = Ref.parse(run.base_ref, what="base model")
    datasets = sorted(
        (Ref.parse(u.ref, what="dataset"), u.file_sha256, u.merkle_root) for u in run.datasets
    )
    return {
        "id": run.id,
        "config_sha256": run.config_sha256,
        "base_name": base.name,
        "base_version": base.version,
        "base_digest": run.base_digest,
        "code_commit": run.code.commit,
        "code_dirty": run.code.dirty,
        "seed": run.seed,
        "created_by": run.actor,
        "datasets": [[d.name, d.version, sha, root] for d, sha, root in datasets],
    }


def _insert_training_run(conn: Connection, name: str, version: int, run: TrainingRun) -> None:
    base = Ref.parse(run.base_ref, what="base model")
    conn.execute(
        "INSERT INTO training_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.id,
            name,
            version,
            run.model_dump_json(),
            run.config_sha256,
            base.name,
            base.version,
            run.base_digest,
            run.code.commit,
            run.code.dirty,
            run.seed,
            run.started_at,
            run.finished_at,
            run.actor,
        ],
    )
    for use in run.datasets:
        dataset = Ref.parse(use.ref, what="dataset")
        conn.execute(
            "INSERT INTO training_run_datasets VALUES (?, ?, ?, ?, ?)",
            [run.id, dataset.name, dataset.version, use.file_sha256, use.merkle_root],
        )
