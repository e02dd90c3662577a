"""The registry directory, opened: the facade that builds every collection on one core.

A registry is a directory::

    registry.duckdb            the database (schema: docs/schema.md)
    objects/sha256/ab/<hex>    the content-addressed artifact store
    audit-checkpoints.jsonl    signed chain heads, mirrored outside the database
    tmp/                       staging for files on their way into objects/

or a PostgreSQL database with such a directory (shared) as its store, or with an S3
store (``s3://bucket/prefix``: ``objects/`` and ``checkpoints/`` there, and a cache of
verified objects on each machine).

:class:`Registry` is a :class:`~loraledger.registry.core.Core` (storage, ``change()``,
``act_as()``) that creates and migrates the directory and builds each collection with
the core and the siblings it names. Every state change goes through
:meth:`Core.change`: one short write transaction in which the caller writes its rows
and records its audit events, after which the acting identity signs a checkpoint of the
chain head -- so a change and its audit trail commit together or not at all.
"""

from __future__ import annotations

import contextlib
import os
import platform
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import cast

import duckdb

import loraledger
from loraledger.errors import (
    AlreadyExists,
    InputError,
    NotARegistry,
    PermissionDenied,
    StorageError,
    UsageError,
    VerificationError,
)

from . import schema
from .adapters import Adapters
from .approvals import DECISION_EVENTS, Approvals
from .attestations import RECORDED_BY, Attestations
from .audit import utcnow
from .base_models import BaseModels
from .core import (
    DB_FILE,
    REGISTRY_ENV,
    SYSTEM_ACTOR,
    Change,
    Core,
    default_registry_path,
    os_user,
    registry_location,
)
from .datasets import Datasets
from .db import Connection, Database, DuckDatabase, dialect_of, lock_timeout_from_env
from .deployments import DEPLOY_EVENTS, Deployments
from .derivations import DERIVE_EVENT, Derivations
from .dialect import DUCKDB
from .evaluations import COMPARE_EVENTS, EVAL_EVENTS, Evaluations, samples_digests
from .gate_checks import GATE_EVENTS, GateChecks
from .identities import Identities
from .keys import KeyStore
from .models import AuditEvent
from .policy_versions import POLICY_EVENTS, PolicyVersions
from .postgres import PostgresDatabase
from .s3 import S3Objects, check_s3_url, is_s3_url
from .store import ObjectStorage, cache_dir
from .trust import TrustRoot


class Registry(Core):
    """An opened registry directory and its collections of records."""

    # --- opening ----------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        root: Path | str,
        *,
        store: Path | str | None = None,
        keys: KeyStore | None = None,
        lock_timeout: float | None = None,
        trust_root: TrustRoot | None = None,
    ) -> Registry:
        """Create a new registry: in ``root``, a new or empty directory, or in the empty
        PostgreSQL database a ``postgresql://`` URL names, with its files in ``store``: a
        new or empty directory every writer's machine mounts at the same path, or an
        ``s3://bucket/prefix`` that holds nothing yet."""
        root = registry_location(root)
        if isinstance(root, str):
            if store is None:
                raise UsageError(
                    "a PostgreSQL registry needs --store: the directory (shared by every "
                    "machine that writes) that holds its artifacts"
                )
            return cls._init_postgres(
                root, store, keys=keys, lock_timeout=lock_timeout, trust_root=trust_root
            )
        if store is not None:
            raise UsageError(
                "--store is for a PostgreSQL registry; a directory registry keeps its "
                "artifacts inside its directory"
            )
        if (root / DB_FILE).exists():
            raise AlreadyExists(f"{root} is already a LoRA Ledger registry; use it as it is")
        check_new_directory(root)
        registry_id = str(uuid.uuid4())
        # Build the database under a temporary name and rename it into place, so a
        # crash during init never leaves a half-made registry behind.
        building = root / f"{DB_FILE}.init-{os.getpid()}"
        registry = cls(
            root, registry_id, keys=keys, lock_timeout=lock_timeout, trust_root=trust_root
        )
        registry._create(DuckDatabase(building, lock_timeout=registry.db.lock_timeout), {})
        os.replace(building, root / DB_FILE)
        for sub in ("objects", "tmp"):
            (root / sub).mkdir(exist_ok=True)
        return registry

    @classmethod
    def _init_postgres(
        cls,
        url: str,
        store: Path | str,
        *,
        keys: KeyStore | None,
        lock_timeout: float | None,
        trust_root: TrustRoot | None,
    ) -> Registry:
        db = PostgresDatabase(url, lock_timeout=lock_timeout or lock_timeout_from_env())
        with db.read() as conn:
            if schema.current_version(conn):
                raise AlreadyExists(
                    f"{db.location} is already a LoRA Ledger registry; use it as it is"
                )
        location = store_location(store)
        registry_id = str(uuid.uuid4())
        files, objects = open_store(location, registry_id)
        check_new_store(files, objects)
        registry = cls(files, registry_id, keys=keys, trust_root=trust_root, db=db, objects=objects)
        # One transaction (PostgreSQL's DDL is transactional): all of it, or nothing.
        registry._create(db, {"store": str(location)})
        for sub in ("objects", "tmp"):
            (files / sub).mkdir(parents=True, exist_ok=True)
        return registry

    def _create(self, db: Database, meta: dict[str, str]) -> None:
        """Migrate the empty database ``db`` to the latest schema and record this
        registry's id and its first audit event, in one transaction."""
        now = utcnow()
        with db.write() as conn:
            if schema.current_version(conn):
                raise AlreadyExists(
                    f"{db.location} is already a LoRA Ledger registry; use it as it is"
                )
            applied = schema.apply_pending(conn, now, db.dialect)
            conn.executemany(
                "INSERT INTO registry_meta VALUES (?, ?)",
                [
                    ["registry_id", self.registry_id],
                    ["created_at", now.isoformat()],
                    ["created_with", f"loraledger {loraledger.__version__}"],
                    *([k, v] for k, v in meta.items()),
                ],
            )
            self.audit.append(
                conn,
                SYSTEM_ACTOR,
                "registry.init",
                f"registry:{self.registry_id}",
                {
                    "schema_version": applied[-1].version,
                    "loraledger": loraledger.__version__,
                    "os_user": os_user(),
                    "host": platform.node(),
                },
            )

    @classmethod
    def open(
        cls,
        root: Path | str,
        *,
        keys: KeyStore | None = None,
        lock_timeout: float | None = None,
        trust_root: TrustRoot | None = None,
    ) -> Registry:
        """Open an existing registry (a directory, or a ``postgresql://`` URL), migrating
        an older schema forward. ``trust_root`` pins its root (else
        ``LORALEDGER_TRUST_ROOT``, else trust on first use)."""
        root = registry_location(root)
        timeout = lock_timeout or lock_timeout_from_env()
        db: Database
        if isinstance(root, str):
            db = PostgresDatabase(root, lock_timeout=timeout)
        else:
            if not root.is_dir():
                raise NotARegistry(
                    f"no registry at {root}; run `loraledger init` there, or pass --registry / "
                    f"set {REGISTRY_ENV}"
                )
            if not (root / DB_FILE).is_file():
                raise NotARegistry(
                    f"{root} is not a LoRA Ledger registry (it has no {DB_FILE}); run "
                    "`loraledger init` for a new one or point --registry at an existing one"
                )
            db = DuckDatabase(root / DB_FILE, lock_timeout=timeout)
        with db.read() as conn:
            version = schema.check_compatible(conn, db.location)
            meta = dict(
                conn.execute(
                    "SELECT key, value FROM registry_meta WHERE key IN ('registry_id', 'store')"
                ).fetchall()
            )
        if "registry_id" not in meta:
            raise NotARegistry(
                f"{db.location} has no registry id; it was not made by `loraledger init`"
            )
        files, objects = root, None
        if isinstance(root, str):
            setting = meta.get("store") or ""
            files, objects = open_store(store_location(setting), str(meta["registry_id"]))
            if objects is None and (not setting or not files.is_dir()):
                raise NotARegistry(
                    f"the artifact store of {db.location} ({setting}) is not a "
                    "directory on this machine; mount it at that path"
                )
        registry = cls(
            Path(files),
            str(meta["registry_id"]),
            keys=keys,
            lock_timeout=lock_timeout,
            trust_root=trust_root,
            db=db if isinstance(root, str) else None,
            objects=objects,
        )
        if version < schema.LATEST_VERSION:
            registry._migrate()
        # checkpoints a full disk kept from the file after their commit (still no space:
        # said again at the next change; reads go on)
        with registry.db.read() as conn, contextlib.suppress(OSError, StorageError):
            registry.audit.republish(conn)
        return registry

    def _migrate(self) -> None:
        with self.db.write() as conn:
            before = schema.current_version(conn)
            try:
                applied = schema.apply_pending(conn, utcnow(), self.db.dialect)
            except PermissionDenied as error:  # a team's writer or auditor account
                raise PermissionDenied(
                    f"{self.location} has schema version {before} and this loraledger "
                    f"needs {schema.LATEST_VERSION}; the database's owner upgrades it once "
                    "(any command, e.g. `loraledger audit log --limit 1`, run with the "
                    "owner's account), then everyone goes on"
                ) from error
            if applied:
                self.audit.append(
                    conn,
                    SYSTEM_ACTOR,
                    "registry.migrate",
                    f"registry:{self.registry_id}",
                    {"from": before, "to": applied[-1].version},
                )

    # --- the whole registry checked: the chain, then every row against it ----------------

    def verify_records(self) -> dict[str, int]:
        """Check every row that indexes a signed or audited record against it (identities,
        adapter versions and their files, datasets, base models and their files,
        approvals, deployments, gate checks, evaluation runs with their metrics and
        samples, comparisons, attestations) and return the rows checked by table; raise
        at the first mismatch, naming its table, row and field. Run after the whole
        chain verified (:meth:`verify_audit`), whose events
        it trusts."""
        with self.db.read() as conn, ThreadPoolExecutor(1) as pool:
            digests = _samples_digests_beside(conn, pool)
            self.check_tail(conn)
            events: dict[str, list[AuditEvent]] = {}
            for event in self.audit.events(conn, actions=_RECORDING_EVENTS):
                events.setdefault(event.action, []).append(event)

            def logged(*actions: str) -> list[AuditEvent]:
                return sorted((e for a in actions for e in events.get(a, [])), key=_seq)

            attested = {action for action, _ in RECORDED_BY.values()}
            guards = self.db.check_guards(conn)  # PostgreSQL's triggers; none on DuckDB
            return {
                **({"database_guards": guards} if guards else {}),
                "identities": len(self.trusted_identities(conn)),
                "adapter_versions": self.adapters.check_all(conn, logged("adapter.register")),
                "datasets": self.datasets.check_all(conn, logged("dataset.register")),
                "base_models": self.base_models.check_all(conn, logged("base.register")),
                "approvals": self.approvals.check_all(conn, logged(*DECISION_EVENTS)),
                "deployments": self.deployments.check_all(conn, logged(*DEPLOY_EVENTS)),
                "gate_checks": self.gate_checks.check_all(conn, logged(*GATE_EVENTS)),
                "policy_versions": self.policies.check_all(conn, logged(*POLICY_EVENTS)),
                "eval_runs": self.evaluations.check_all(conn, logged(*EVAL_EVENTS), digests),
                "comparisons": self.evaluations.check_all_comparisons(
                    conn, logged(*COMPARE_EVENTS)
                ),
                "attestations": self.attestations.check_all(conn, logged(*attested)),
            }

    def verify_records_since(self, seq: int) -> dict[str, int]:
        """The quick form of :meth:`verify_records`, after a head verified before (event
        ``seq``): the identities, the rows the newer events recorded (each version,
        version's decisions and environment they touched, as every read checks them), and
        each table's row count against its audited total (so a row inserted or deleted
        anywhere is found). An older row edited in place is found only by the full check."""
        new = [e for e in self.audit_events() if e.seq > seq]
        checked: dict[str, int] = {}
        with self.db.read() as conn:
            self.check_tail(conn)
            if guards := self.db.check_guards(conn):
                checked["database_guards"] = guards
            checked["identities"] = len(self.trusted_identities(conn))
            for table, actions in _COUNTED:
                placeholders = ", ".join("?" * len(actions))
                (rows,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
                (logged,) = conn.execute(
                    f"SELECT count(*) FROM audit_events WHERE action IN ({placeholders})",
                    list(actions),
                ).fetchone() or (0,)
                if rows != logged:
                    raise VerificationError(
                        f"{table} has {rows} rows but the audit log recorded {logged}: rows were "
                        f"inserted or deleted outside LoRA Ledger; run `loraledger audit verify` "
                        "(without --quick) to name them"
                    )
        versions = {
            e.subject.removeprefix("adapter:") for e in new if e.action == "adapter.register"
        }
        decided = {e.subject.removeprefix("adapter:") for e in new if e.action in DECISION_EVENTS}
        environments = {e.subject.removeprefix("env:") for e in new if e.action in DEPLOY_EVENTS}
        for ref in sorted(versions):
            self.adapters.registration(ref)
        checked["adapter_versions"] = len(versions)
        checked["approvals"] = sum(len(self.approvals.list(ref)) for ref in sorted(decided))
        checked["deployments"] = sum(len(self.deployments.history(e)) for e in sorted(environments))
        if any(e.action in POLICY_EVENTS for e in new):
            checked["policy_versions"] = len(self.policies.history())
        for table, action, key, read in (
            ("gate_checks", "gate.check", "check_id", self.gate_checks.get),
            ("eval_runs", "eval.run", "run_id", self.evaluations.get),
            ("comparisons", "eval.compare", "comparison_id", self.evaluations.comparison),
        ):
            ids = [str(e.payload.get(key)) for e in new if e.action == action]
            for row_id in ids:
                read(row_id)
            checked[table] = len(ids)
        return checked

    # --- the collections, each on the core and the siblings it names ---------------------

    @cached_property
    def identities(self) -> Identities:
        return Identities(self)

    @cached_property
    def base_models(self) -> BaseModels:
        return BaseModels(self)

    @cached_property
    def datasets(self) -> Datasets:
        return Datasets(self)

    @cached_property
    def deployments(self) -> Deployments:
        return Deployments(self)

    @cached_property
    def attestations(self) -> Attestations:
        return Attestations(self)

    @cached_property
    def derivations(self) -> Derivations:
        return Derivations(self, self.attestations)

    @cached_property
    def adapters(self) -> Adapters:
        return Adapters(self, self.attestations)

    @cached_property
    def evaluations(self) -> Evaluations:
        return Evaluations(
            self,
            adapters=self.adapters,
            base_models=self.base_models,
            attestations=self.attestations,
        )

    @cached_property
    def policies(self) -> PolicyVersions:
        return PolicyVersions(self)

    @cached_property
    def gate_checks(self) -> GateChecks:
        return GateChecks(self, self.adapters)

    @cached_property
    def approvals(self) -> Approvals:
        return Approvals(self, self.adapters)


# Each table whose rows the audit log records one event each, with those events' actions
# (attestations: one per version or run event that names one, so not counted this way).
_COUNTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("adapter_versions", ("adapter.register",)),
    ("datasets", ("dataset.register",)),
    ("base_models", ("base.register",)),
    ("approvals", DECISION_EVENTS),
    ("deployments", DEPLOY_EVENTS),
    ("gate_checks", GATE_EVENTS),
    ("eval_runs", EVAL_EVENTS),
    ("comparisons", COMPARE_EVENTS),
    ("policy_versions", POLICY_EVENTS),
)
_RECORDING_EVENTS = (*(a for _, actions in _COUNTED for a in actions), DERIVE_EVENT)


def _samples_digests_beside(conn: Connection, pool: ThreadPoolExecutor) -> Future[dict[str, str]]:
    """Every run's samples digest: on DuckDB hashed in SQL on another cursor while Python
    checks the rest (DuckDB lets go of the GIL while it runs a query); elsewhere here."""
    if dialect_of(conn) is not DUCKDB:
        done: Future[dict[str, str]] = Future()
        done.set_result(samples_digests(conn))
        return done
    duck = cast(duckdb.DuckDBPyConnection, conn)
    other = duck.cursor()
    other.execute(f"USE {duck.execute('SELECT current_database()').fetchone()[0]}")  # type: ignore[index]
    digests = pool.submit(samples_digests, other)
    digests.add_done_callback(lambda _: other.close())
    return digests


def store_location(value: Path | str) -> Path | str:
    """A store's location from ``--store`` or the registry's setting: an ``s3://`` URL,
    or an absolute directory."""
    if isinstance(value, str) and is_s3_url(value):
        return check_s3_url(value)
    return Path(value).absolute()


def open_store(location: Path | str, registry_id: str) -> tuple[Path, ObjectStorage | None]:
    """The directory of a store's files and, for an object store, the store: its files'
    directory is then this machine's cache for the registry (:func:`.store.cache_dir`)."""
    if isinstance(location, str):
        return cache_dir(registry_id), S3Objects(location)
    return location, None


def check_new_store(files: Path, objects: ObjectStorage | None) -> None:
    """Refuse a store that holds anything: a directory must be new or empty, an object
    store's prefix must hold no object."""
    if objects is None:
        check_new_directory(files)
        return
    if next(iter(objects.keys("")), None) is not None:
        raise InputError(
            f"{objects.location} already holds objects; give a new prefix (s3://BUCKET/PREFIX) "
            "for this registry's artifacts"
        )
    files.mkdir(parents=True, exist_ok=True)


def check_new_directory(root: Path) -> None:
    """Refuse ``root`` unless it is new or an empty directory; make it."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise NotARegistry(
            f"{root} exists and is not an empty directory; choose a new or empty one"
        )
    root.mkdir(parents=True, exist_ok=True)


def _seq(event: AuditEvent) -> int:
    return event.seq


__all__ = [
    "DB_FILE",
    "REGISTRY_ENV",
    "SYSTEM_ACTOR",
    "Change",
    "Registry",
    "default_registry_path",
]
