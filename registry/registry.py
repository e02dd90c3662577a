"""The registry directory, opened: the facade that builds every collection on one core.

A registry is a directory::

    registry.duckdb            the database (schema: docs/schema.md)
    objects/sha256/ab/<hex>    the content-addressed artifact store
    audit-checkpoints.jsonl    signed chain heads, mirrored outside the database
    tmp/                       staging for files on their way into objects/

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
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import loraledger
from loraledger.errors import AlreadyExists, NotARegistry, VerificationError

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
)
from .datasets import Datasets
from .db import Database, lock_timeout_from_env
from .deployments import DEPLOY_EVENTS, Deployments
from .evaluations import COMPARE_EVENTS, EVAL_EVENTS, Evaluations, samples_digests
from .gate_checks import GATE_EVENTS, GateChecks
from .identities import Identities
from .keys import KeyStore
from .models import AuditEvent
from .trust import TrustRoot


class Registry(Core):
    """An opened registry directory and its collections of records."""

    # --- opening ----------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        root: Path,
        *,
        keys: KeyStore | None = None,
        lock_timeout: float | None = None,
        trust_root: TrustRoot | None = None,
    ) -> Registry:
        """Create a new registry at ``root`` (a new or empty directory)."""
        if (root / DB_FILE).exists():
            raise AlreadyExists(f"{root} is already a LoRA Ledger registry; use it as it is")
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise NotARegistry(
                f"{root} exists and is not an empty directory; choose a new or empty one"
            )
        root.mkdir(parents=True, exist_ok=True)
        registry_id = str(uuid.uuid4())
        # Build the database under a temporary name and rename it into place, so a
        # crash during init never leaves a half-made registry behind.
        building = root / f"{DB_FILE}.init-{os.getpid()}"
        registry = cls(
            root, registry_id, keys=keys, lock_timeout=lock_timeout, trust_root=trust_root
        )
        builder = Database(building, lock_timeout=registry.db.lock_timeout)
        now = utcnow()
        with builder.write() as conn:
            applied = schema.apply_pending(conn, now)
            conn.executemany(
                "INSERT INTO registry_meta VALUES (?, ?)",
                [
                    ["registry_id", registry_id],
                    ["created_at", now.isoformat()],
                    ["created_with", f"loraledger {loraledger.__version__}"],
                ],
            )
            registry.audit.append(
                conn,
                SYSTEM_ACTOR,
                "registry.init",
                f"registry:{registry_id}",
                {
                    "schema_version": applied[-1].version,
                    "loraledger": loraledger.__version__,
                    "os_user": os_user(),
                    "host": platform.node(),
                },
            )
        os.replace(building, root / DB_FILE)
        for sub in ("objects", "tmp"):
            (root / sub).mkdir(exist_ok=True)
        return registry

    @classmethod
    def open(
        cls,
        root: Path,
        *,
        keys: KeyStore | None = None,
        lock_timeout: float | None = None,
        trust_root: TrustRoot | None = None,
    ) -> Registry:
        """Open an existing registry, migrating an older schema forward. ``trust_root``
        pins its root (else ``LORALEDGER_TRUST_ROOT``, else trust on first use)."""
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
        probe = Database(root / DB_FILE, lock_timeout=lock_timeout or lock_timeout_from_env())
        with probe.read() as conn:
            version = schema.check_compatible(conn, str(root))
            row = conn.execute(
                "SELECT value FROM registry_meta WHERE key = 'registry_id'"
            ).fetchone()
        if row is None:
            raise NotARegistry(f"{root} has no registry id; it was not made by `loraledger init`")
        registry = cls(
            root, str(row[0]), keys=keys, lock_timeout=lock_timeout, trust_root=trust_root
        )
        if version < schema.LATEST_VERSION:
            registry._migrate()
        # checkpoints a full disk kept from the file after their commit (still no space:
        # said again at the next change; reads go on)
        with registry.db.read() as conn, contextlib.suppress(OSError):
            registry.audit.republish(conn)
        return registry

    def _migrate(self) -> None:
        with self.db.write() as conn:
            before = schema.current_version(conn)
            applied = schema.apply_pending(conn, utcnow())
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
        adapter versions and their files, approvals, deployments, gate checks, evaluation
        runs with their metrics and samples, comparisons, attestations) and return the
        rows checked by table; raise at the first mismatch, naming its table, row and
        field. Run after the whole chain verified (:meth:`verify_audit`), whose events
        it trusts."""
        with self.db.read() as conn, ThreadPoolExecutor(1) as pool:
            # the samples are hashed in SQL on another cursor while Python checks the rest
            # (DuckDB lets go of the GIL while it runs a query)
            other = conn.cursor()
            other.execute(f"USE {conn.execute('SELECT current_database()').fetchone()[0]}")  # type: ignore[index]
            digests = pool.submit(samples_digests, other)
            digests.add_done_callback(lambda _: other.close())
            self.audit.check_tail(conn)
            events: dict[str, list[AuditEvent]] = {}
            for event in self.audit.events(conn, actions=_RECORDING_EVENTS):
                events.setdefault(event.action, []).append(event)

            def logged(*actions: str) -> list[AuditEvent]:
                return sorted((e for a in actions for e in events.get(a, [])), key=_seq)

            attested = {action for action, _ in RECORDED_BY.values()}
            return {
                "identities": len(self.trusted_identities(conn)),
                "adapter_versions": self.adapters.check_all(conn, logged("adapter.register")),
                "approvals": self.approvals.check_all(conn, logged(*DECISION_EVENTS)),
                "deployments": self.deployments.check_all(conn, logged(*DEPLOY_EVENTS)),
                "gate_checks": self.gate_checks.check_all(conn, logged(*GATE_EVENTS)),
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
            self.audit.check_tail(conn)
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
    def gate_checks(self) -> GateChecks:
        return GateChecks(self, self.adapters)

    @cached_property
    def approvals(self) -> Approvals:
        return Approvals(self, self.adapters)


# Each table whose rows the audit log records one event each, with those events' actions
# (attestations: one per version or run event that names one, so not counted this way).
_COUNTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("adapter_versions", ("adapter.register",)),
    ("approvals", DECISION_EVENTS),
    ("deployments", DEPLOY_EVENTS),
    ("gate_checks", GATE_EVENTS),
    ("eval_runs", EVAL_EVENTS),
    ("comparisons", COMPARE_EVENTS),
)
_RECORDING_EVENTS = tuple(a for _, actions in _COUNTED for a in actions)


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
