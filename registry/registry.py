"""The registry directory and the one way every change is written.

A registry is a directory::

    registry.duckdb            the database (schema: docs/schema.md)
    objects/sha256/ab/<hex>    the content-addressed artifact store
    audit-checkpoints.jsonl    signed chain heads, mirrored outside the database
    tmp/                       staging for files on their way into objects/

Every state change goes through :meth:`Registry.change`: one short write transaction in
which the caller writes its rows and records its audit events, after which the acting
identity signs a checkpoint of the chain head -- so a change and its audit trail commit
together or not at all.
"""

from __future__ import annotations

import getpass
import os
import platform
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import loraledger
from loraledger.errors import (
    AlreadyExists,
    Conflict,
    LedgerError,
    NotARegistry,
    NotFound,
    PermissionDenied,
    SigningKeyError,
    UsageError,
)

from . import schema
from .audit import AuditLog, NewEvent, utcnow
from .db import Connection, Database, lock_timeout_from_env
from .keys import KeyStore, SigningKey
from .models import AuditEvent, AuditReport, Identity, IdentityStatus, Role
from .permissions import Action, resolve
from .store import ArtifactStore

if TYPE_CHECKING:
    from .adapters import Adapters
    from .approvals import Approvals
    from .attestations import Attestations
    from .base_models import BaseModels
    from .datasets import Datasets
    from .deployments import Deployments
    from .evaluations import Evaluations
    from .gate_checks import GateChecks
    from .identities import Identities

REGISTRY_ENV = "LORALEDGER_REGISTRY"
DEFAULT_REGISTRY = Path(".loraledger")
DB_FILE = "registry.duckdb"
SYSTEM_ACTOR = "loraledger"


def default_registry_path() -> Path:
    return Path(os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY)


@dataclass
class Change:
    """What one state change writes: rows through ``conn``, events through ``record``."""

    conn: Connection
    actor: str
    events: list[NewEvent] = field(default_factory=list)

    def record(self, action: str, subject: str, payload: dict[str, Any]) -> None:
        self.events.append(NewEvent(self.actor, action, subject, payload))


class Registry:
    """An opened registry directory. Holds no connection: each call opens its own."""

    def __init__(
        self,
        root: Path,
        registry_id: str,
        *,
        keys: KeyStore | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self.root = root
        self.registry_id = registry_id
        self.db = Database(root / DB_FILE, lock_timeout=lock_timeout or lock_timeout_from_env())
        self.store = ArtifactStore(root / "objects", root / "tmp")
        self.audit = AuditLog(registry_id, root)
        self.keys = keys or KeyStore()

    # --- opening ----------------------------------------------------------------------

    @classmethod
    def init(
        cls, root: Path, *, keys: KeyStore | None = None, lock_timeout: float | None = None
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
        registry = cls(root, registry_id, keys=keys, lock_timeout=lock_timeout)
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
                    "os_user": _os_user(),
                    "host": platform.node(),
                },
            )
        os.replace(building, root / DB_FILE)
        for sub in ("objects", "tmp"):
            (root / sub).mkdir(exist_ok=True)
        return registry

    @classmethod
    def open(
        cls, root: Path, *, keys: KeyStore | None = None, lock_timeout: float | None = None
    ) -> Registry:
        """Open an existing registry, migrating an older schema forward."""
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
        registry = cls(root, str(row[0]), keys=keys, lock_timeout=lock_timeout)
        if version < schema.LATEST_VERSION:
            registry._migrate()
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

    # --- the parts --------------------------------------------------------------------

    @cached_property
    def identities(self) -> Identities:
        from .identities import Identities

        return Identities(self)

    @cached_property
    def base_models(self) -> BaseModels:
        from .base_models import BaseModels

        return BaseModels(self)

    @cached_property
    def datasets(self) -> Datasets:
        from .datasets import Datasets

        return Datasets(self)

    @cached_property
    def adapters(self) -> Adapters:
        from .adapters import Adapters

        return Adapters(self)

    @cached_property
    def evaluations(self) -> Evaluations:
        from .evaluations import Evaluations

        return Evaluations(self)

    @cached_property
    def attestations(self) -> Attestations:
        from .attestations import Attestations

        return Attestations(self)

    @cached_property
    def gate_checks(self) -> GateChecks:
        from .gate_checks import GateChecks

        return GateChecks(self)

    @cached_property
    def approvals(self) -> Approvals:
        from .approvals import Approvals

        return Approvals(self)

    @cached_property
    def deployments(self) -> Deployments:
        from .deployments import Deployments

        return Deployments(self)

    # --- acting -----------------------------------------------------------------------

    def act_as(
        self,
        name: str | None,
        needs: Action | Collection[Role] | None = None,
        *,
        action: str | None = None,
    ) -> SigningKey:
        """Load the private key of the acting identity after checking it may act.

        ``needs`` is the :class:`Action` (whose roles the permissions table gives), or
        an explicit set of roles (an environment policy's approvers), or None for any
        active identity. Raises if the identity is unknown, revoked, lacks the role, or if
        the key on this machine is not the one registered for it. Each such refusal is
        recorded as an ``access.refused`` audit event naming the claimed identity and the
        action (``action``, else the Action's name); the next signed checkpoint covers it.
        """
        if not name:
            raise UsageError("no acting identity: pass --as NAME or set LORALEDGER_ACTOR")
        roles = resolve(needs)
        action = action or (needs.value if isinstance(needs, Action) else "act")
        try:
            identity = self.identities.get(name)
            _check_may_act(identity, roles)
            key = self.keys.load(name)
            if key.fingerprint != identity.key_fingerprint:
                raise SigningKeyError(
                    f"the private key at {key.path} is not the key registered for {name!r} "
                    f"(fingerprint {identity.key_fingerprint[:16]}…); use that identity's own key"
                )
        except (NotFound, PermissionDenied, SigningKeyError) as error:
            self._record_refusal(name, action, roles, error)
            raise
        return key

    def _record_refusal(
        self, name: str, action: str, roles: frozenset[Role] | None, error: LedgerError
    ) -> None:
        payload = {
            "action": action,
            "needs": sorted(r.value for r in roles) if roles else None,
            "reason": str(error),
        }
        with self.db.write() as conn:
            self.audit.append(conn, name, "access.refused", f"identity:{name}", payload)

    @contextmanager
    def change(
        self,
        key: SigningKey,
        needs: Action | Collection[Role] | None = None,
        *,
        bootstrap: bool = False,
    ) -> Iterator[Change]:
        """One state change: rows and audit events in one transaction, then a signed
        checkpoint of the new head, mirrored to the checkpoint file after commit.

        The actor's identity is checked again inside the transaction, so a key revoked
        while a long registration was hashing cannot slip a change in. ``bootstrap`` is
        for the first identity of a registry, which acts as itself: it is allowed only
        while the registry has no identity at all.
        """
        with self.db.write() as conn:
            if bootstrap:
                count = conn.execute("SELECT count(*) FROM identities").fetchone()
                if count and count[0]:
                    raise Conflict("the registry already has identities; act as an admin")
            else:
                identity = self.identities.get_in(conn, key.name)
                if identity.key_fingerprint != key.fingerprint:
                    raise SigningKeyError(f"the key of {key.name!r} changed; act again")
                _check_may_act(identity, resolve(needs))
            change = Change(conn, key.name)
            yield change
            if not change.events:
                raise RuntimeError("a registry change recorded no audit event")
            self.audit.append_many(conn, change.events)
            checkpoint = self.audit.checkpoint(conn, key)
        self.audit.publish(checkpoint)

    # --- the audit log -----------------------------------------------------------------

    def audit_events(self, **filters: Any) -> list[AuditEvent]:
        """Events, oldest first; filters: actor, action, subject, limit, newest_first."""
        with self.db.read() as conn:
            return self.audit.events(conn, **filters)

    def audit_head(self) -> tuple[int, str]:
        with self.db.read() as conn:
            return self.audit.head(conn)

    def verify_audit_events(self, events: list[AuditEvent]) -> int:
        """Check ``events`` against the chain up to signed checkpoints (see
        :meth:`AuditLog.verify_events`); returns the number of checkpoints used."""
        with self.db.read() as conn:
            keys = self.identities.public_keys(conn)
            return self.audit.verify_events(conn, [e.seq for e in events], keys)

    def verify_audit(
        self,
        *,
        expect_head: tuple[int, str] | None = None,
        since: tuple[int, str] | None = None,
    ) -> AuditReport:
        """Recompute the chain and check every checkpoint against the identities' keys
        (after the head ``since``, verified before, when given)."""
        with self.db.read() as conn:
            keys = self.identities.public_keys(conn)
            return self.audit.verify(conn, keys, expect_head=expect_head, since=since)

    def remove_stale_files(self) -> int:
        """Clear staging left behind by killed processes (safe while others work)."""
        return self.store.remove_stale_scratch()


def _check_may_act(identity: Identity, roles: frozenset[Role] | None) -> None:
    if identity.status is not IdentityStatus.ACTIVE:
        raise PermissionDenied(
            f"identity {identity.name!r} was revoked"
            f"{' (' + identity.revoke_reason + ')' if identity.revoke_reason else ''}; "
            "act as an active identity"
        )
    if roles is not None and identity.role not in roles:
        wanted = " or ".join(sorted(r.value for r in roles))
        raise PermissionDenied(
            f"identity {identity.name!r} has role {identity.role.value}; this needs {wanted}"
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


__all__ = ["DB_FILE", "Change", "Registry", "default_registry_path"]
