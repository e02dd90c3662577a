"""The registry's core: what every collection of records is built on.

One registry directory's database, artifact store, audit log and key store, the one way
a state change is written (:meth:`Core.change`: rows and audit events in one transaction,
then a signed checkpoint), the check of who may act (:meth:`Core.act_as`, reading the
permissions table) and the reading of identities that check needs.

The collections (identities, datasets, adapters, ...) each receive a core and the named
siblings they use; none imports :class:`~loraledger.registry.registry.Registry`, the
facade that builds them (docs/architecture.md draws the order).
"""

from __future__ import annotations

import getpass
import os
import warnings
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraledger.errors import (
    Conflict,
    LedgerError,
    LedgerWarning,
    NotFound,
    PermissionDenied,
    SigningKeyError,
    StorageError,
    UsageError,
    VerificationError,
)

from .audit import AuditLog, NewEvent, VoidCheckpoint
from .crosscheck import RESTORE, check_row
from .db import Connection, Database, DuckDatabase, lock_timeout_from_env
from .keys import KeyStore, SigningKey
from .models import AuditEvent, AuditReport, Checkpoint, Identity, IdentityStatus, KeyStatus, Role
from .permissions import Action, resolve
from .postgres import PostgresDatabase, check_url, is_url
from .published import CHECKPOINT_FILE, CheckpointFile, CheckpointObjects, PublishedCheckpoints
from .refs import validate_name
from .store import ArtifactStore, ObjectStorage
from .trust import (
    IDENTITY_EVENTS,
    Enrolment,
    KeyRing,
    TrustRoot,
    check_root,
    check_seen_head,
    pinned_from_env,
    replay,
    root_of,
)

REGISTRY_ENV = "LORALEDGER_REGISTRY"
DEFAULT_REGISTRY = Path(".loraledger")
DB_FILE = "registry.duckdb"
SYSTEM_ACTOR = "loraledger"

IDENTITY_COLUMNS = (
    "name, role, public_key_pem, key_fingerprint, status, created_at, created_by, "
    "revoked_at, revoked_by, revoke_reason"
)


def registry_location(value: str | Path) -> Path | str:
    """Where a registry lives, from a ``--registry`` value: a directory (the embedded
    default) or a ``postgresql://`` URL (a team's registry)."""
    if isinstance(value, str) and is_url(value):
        return check_url(value)
    return Path(value)


def published_checkpoints(root: Path, objects: ObjectStorage | None) -> PublishedCheckpoints:
    """Where a registry publishes its checkpoints: its S3 store's ``checkpoints/``, else
    the file in its directory."""
    if objects is not None:
        return CheckpointObjects(objects)
    return CheckpointFile(root / CHECKPOINT_FILE)


def default_registry_path() -> Path | str:
    return registry_location(os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY)


def identity_from_row(row: tuple[Any, ...]) -> Identity:
    return Identity(
        name=row[0],
        role=Role(row[1]),
        public_key_pem=row[2],
        key_fingerprint=row[3],
        status=IdentityStatus(row[4]),
        created_at=row[5],
        created_by=row[6],
        revoked_at=row[7],
        revoked_by=row[8],
        revoke_reason=row[9],
    )


@dataclass
class Change:
    """What one state change writes: rows through ``conn``, events through ``record``."""

    conn: Connection
    actor: str
    events: list[NewEvent] = field(default_factory=list)

    def record(self, action: str, subject: str, payload: dict[str, Any]) -> None:
        self.events.append(NewEvent(self.actor, action, subject, payload))


class Core:
    """An opened registry's storage and its rules of acting. Holds no connection: each
    call opens its own.

    ``root`` is the directory of its files (artifact store, checkpoint file); ``db`` its
    database: the DuckDB file in ``root`` unless given (a PostgreSQL registry's);
    ``objects`` the S3 store of a PostgreSQL registry whose artifacts and published
    checkpoints live there (``root`` is then this machine's cache of verified objects)."""

    def __init__(
        self,
        root: Path,
        registry_id: str,
        *,
        keys: KeyStore | None = None,
        lock_timeout: float | None = None,
        trust_root: TrustRoot | None = None,
        db: Database | None = None,
        objects: ObjectStorage | None = None,
    ) -> None:
        self.root = root
        self.registry_id = registry_id
        self.db: Database = db or DuckDatabase(
            root / DB_FILE, lock_timeout=lock_timeout or lock_timeout_from_env()
        )
        self.location = self.db.location if db is not None else str(root)
        # what `Registry.open` takes to open it again: the directory, or the database URL
        self.address: Path | str = db.url if isinstance(db, PostgresDatabase) else root
        self.store = ArtifactStore(root / "objects", root / "tmp", objects)
        # where the files are, as the registry records it: the directory, or the s3:// URL
        self.store_address = objects.location if objects is not None else str(root)
        self.audit = AuditLog(registry_id, published_checkpoints(root, objects))
        self.audit.committed_hash = self._committed_hash
        self.keys = keys or KeyStore()
        self.trust_root = trust_root if trust_root is not None else pinned_from_env()
        self.root_trusted: str | None = None  # how the root was trusted: see trust.check_root
        self._trusted_at: tuple[tuple[int, str], dict[str, Identity]] | None = None

    def _committed_hash(self, seq: int) -> str | None:
        """Event ``seq``'s hash as the database holds it now (a snapshot of its own)."""
        with self.db.snapshot() as conn:
            row = conn.execute("SELECT hash FROM audit_events WHERE seq = ?", [seq]).fetchone()
        return None if row is None else str(row[0])

    # --- identities, as the checks read them ---------------------------------------------

    def identity(self, name: str) -> Identity:
        """The identity ``name`` (memoised while the database is unchanged)."""

        def lookup() -> Identity:
            with self.db.read() as conn:
                return self.identity_in(conn, name)

        return self.db.memo(("identity", name), lookup)

    def identity_in(self, conn: Connection, name: str) -> Identity:
        identity = self.trusted_identities(conn).get(name)
        if identity is None:
            raise NotFound(
                f"unknown identity {name!r}; see `loraledger keys list` for the registered ones"
            )
        return identity

    def public_keys(self, conn: Connection) -> KeyRing:
        """Every key each identity has held, revoked and retired ones included (for old
        signatures), with where in the chain each was valid, as the identity history
        verified back to the root says (:mod:`.trust`)."""
        trusted = self.trusted_identities(conn)
        root = next((i.name for i in trusted.values() if i.created_by == i.name), None)
        return KeyRing({n: i.keys for n, i in trusted.items()}, root)

    def trusted_identities(self, conn: Connection) -> dict[str, Identity]:
        """The identities, by name, replayed from their signed history back to the trust
        root, with each ``identities`` row checked against it (a row that differs, or has
        no history, is refused). Remembered by this process while the log's head is the
        same: the head's hash commits to every event the replay read, so what was verified
        for it stays true (a later edit of a row changes nothing decided from this), and
        while the log only grew from that head with no identity event."""
        head = self.db.memo(("audit head",), lambda: self.audit.head(conn))
        cached = self._trusted_at
        if cached is not None and (cached[0] == head or self._extends(conn, cached[0])):
            self._trusted_at = (head, cached[1])
            return cached[1]
        if cached is not None:  # identity events since: which keys were valid where may
            self.audit.forget_verified()  # have changed (a compromise), so verify afresh
        trusted = self._trusted(conn)
        self._trusted_at = (head, trusted)
        return trusted

    def _extends(self, conn: Connection, verified: tuple[int, str]) -> bool:
        """Whether the log still holds the head ``verified`` (its event, with its hash) and
        holds no identity event after it: the replay of that head stands for this one."""
        seq, digest = verified
        row = conn.execute(
            "SELECT (SELECT hash FROM audit_events WHERE seq = ?), (SELECT count(*) FROM "
            "audit_events WHERE seq > ? AND action IN (SELECT unnest(?::VARCHAR[])))",
            [seq, seq, list(IDENTITY_EVENTS)],
        ).fetchone()
        return row is not None and row[0] == digest and row[1] == 0

    def history(self, conn: Connection) -> dict[str, Enrolment]:
        """The verified identity history (see :func:`.trust.replay`), root checked."""
        events = self.audit.events(conn, actions=IDENTITY_EVENTS)
        seqs = [e.seq for e in events]
        history = replay(events, self.audit.covering_signers(conn, seqs))
        root = root_of(history)
        if root is not None:
            how = check_root(self.registry_id, root, self.trust_root)
            if self.root_trusted != "first use":  # said once, for this process
                self.root_trusted = how
            # the identity history must be vouched for by its own changes' checkpoints:
            # one signed with a compromised key is refused, never skipped
            try:
                self.audit.verify_events(conn, seqs, KeyRing.of(history), skip_void=False)
            except VoidCheckpoint as error:
                raise VerificationError(
                    f"the identity history was changed with a compromised key ({error}): an "
                    "identity, key or revocation may be the thief's; restore the registry from "
                    "a backup made before that event and declare the compromise again"
                ) from None
        return history

    def _trusted(self, conn: Connection) -> dict[str, Identity]:
        history = self.history(conn)
        rows = {
            r[0]: identity_from_row(r)
            for r in conn.execute(f"SELECT {IDENTITY_COLUMNS} FROM identities").fetchall()
        }
        for name, identity in rows.items():
            enrolled = history.get(name)
            if enrolled is None:
                raise VerificationError(
                    f"identities row {name} has no identity.create event: it was not written "
                    f"by LoRA Ledger; {RESTORE}"
                )
            recorded = enrolled.recorded()
            stored = identity.model_dump(mode="json")
            check_row(
                "identities",
                name,
                {f: stored[f] for f in recorded},
                recorded,
                "its signed history",
            )
            rows[name] = identity.model_copy(update={"keys": enrolled.keys})
        for name in history.keys() - rows.keys():
            raise VerificationError(
                f"identities row {name}, created by audit event #{history[name].created_seq}, "
                f"is missing from the database; {RESTORE}"
            )
        return rows

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
        # a name no identity can have is refused before anything is recorded: the log
        # never holds a 100,000-character or terminal-escaping "actor"
        validate_name(name, what="acting identity (--as)")
        roles = resolve(needs)
        action = action or (needs.value if isinstance(needs, Action) else "act")
        try:
            identity = self.identity(name)
            _check_may_act(identity, roles)
            key = self.keys.load(name)
            _check_holds(identity, key)
        except (NotFound, PermissionDenied, SigningKeyError) as error:
            self._record_refusal(name, action, roles, error)
            raise
        return key

    def may_append(self) -> bool:
        """Whether this account may record anything (False: a read-only database account,
        an auditor's, whose reads are not recorded: docs/deployment.md)."""

        def ask() -> bool:
            with self.db.read() as conn:
                return self.db.may_append(conn)

        return self.db.memo(("may append",), ask)

    def _record_refusal(
        self, name: str, action: str, roles: frozenset[Role] | None, error: LedgerError
    ) -> None:
        if not self.may_append():
            return  # a read-only account records nothing; the refusal is still raised
        payload = {
            "action": action,
            "needs": sorted(r.value for r in roles) if roles else None,
            "reason": str(error),
        }
        own = self._own_key(name)
        with self.db.write() as conn:
            self.audit.append(conn, name, "access.refused", f"identity:{name}", payload)
            checkpoint = self.audit.checkpoint(conn, own) if own is not None else None
        if checkpoint is not None:
            self.publish(checkpoint)

    def _own_key(self, name: str) -> SigningKey | None:
        """The refused actor's own valid key, when it is on this machine and opens without
        a prompt (a role refusal): it signs the checkpoint of its own refusal, so the
        refusal cannot be cut from the log unseen. An unknown name, a revoked identity or a
        key that is not the registered one has no valid key; the next signed change
        covers that refusal (docs/threat-model.md)."""
        try:
            identity = self.identity(name)
            if identity.status is not IdentityStatus.ACTIVE:
                return None
            key = KeyStore(self.keys.directory).load(name)
        except LedgerError:
            return None
        held = identity.key(key.fingerprint)
        return key if held is not None and held.status is KeyStatus.ACTIVE else None

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
                identity = self.identity_in(conn, key.name)
                _check_may_act(identity, resolve(needs))
                _check_holds(identity, key)
            change = Change(conn, key.name)
            yield change
            if not change.events:
                raise RuntimeError("a registry change recorded no audit event")
            self.audit.append_many(conn, change.events)
            checkpoint = self.audit.checkpoint(conn, key)
        self.publish(checkpoint)

    def publish(self, checkpoint: Checkpoint) -> None:
        """Publish a committed checkpoint outside the database. The change has committed
        whatever happens here: a failed write (disk full, the object store down) is said
        as a warning, not an error, and what was missed is published the next time the
        registry is opened (:meth:`AuditLog.republish`)."""
        try:
            self.audit.publish(checkpoint)
        except (OSError, StorageError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error)
            warnings.warn(
                f"the change committed (audit event #{checkpoint.seq}), but "
                f"{self.audit.published.name} could not be written ({reason}); "
                "it is brought up to date the next time the registry is opened with space",
                LedgerWarning,
                stacklevel=3,
            )

    # --- the audit log -----------------------------------------------------------------

    def audit_events(self, **filters: Any) -> list[AuditEvent]:
        """Events, oldest first; filters: actor, action, subject, limit, newest_first."""
        with self.db.read() as conn:
            return self.audit.events(conn, **filters)

    def audit_head(self) -> tuple[int, str]:
        with self.db.read() as conn:
            return self.audit.head(conn)

    def audited(
        self, conn: Connection, actions: Collection[str], subject: str | None = None
    ) -> list[AuditEvent]:
        """The events ``actions`` (on ``subject``), oldest first, each checked intact up to
        a signed checkpoint, in a log that was not cut short (see
        :meth:`AuditLog.check_tail`): the signed records that rows are checked against
        (:mod:`.crosscheck`)."""

        def read(subject: str | None, actions: Collection[str] | None) -> list[AuditEvent]:
            self.db.memo(("tail checked",), lambda: self.check_tail(conn))
            events = self.audit.events(conn, subject=subject, actions=actions)
            self.audit.verify_read(conn, events, self.public_keys(conn))
            return events

        if subject is None:
            return list(
                self.db.memo(("audited", tuple(sorted(actions))), lambda: read(None, actions))
            )
        # A subject's events are few: one operation reads (and verifies) all of them once,
        # and each kind of record (registration, evaluations, gate checks, approvals)
        # takes its actions from that list -- a gate check or a trace asks for four kinds.
        wanted = set(actions)
        every = self.db.memo(("audited", subject), lambda: read(subject, None))
        return [e for e in every if e.action in wanted]

    def refuse_void(self, events: Iterable[AuditEvent], what: str, then: str) -> None:
        """Refuse ``what`` when a change signed with a key compromised there recorded it
        (``AuditLog.void_reason``): intact in the chain, but nobody's word. ``then`` says
        what to do instead."""
        for event in events:
            void = self.audit.void_reason(event.seq)
            if void is not None:
                raise VerificationError(
                    f"{what} was recorded by a change signed with a compromised key ({void}): "
                    f"it is nobody's word; {then}"
                )

    def check_tail(self, conn: Connection) -> None:
        """The log was not cut at its end: it holds the newest checkpoint published
        outside the database (:meth:`AuditLog.check_tail`) and the newest head this
        machine saw of it (:func:`.trust.check_seen_head`), which is then moved on."""
        self.audit.check_tail(conn)

        def hash_at(seq: int) -> str | None:
            row = conn.execute("SELECT hash FROM audit_events WHERE seq = ?", [seq]).fetchone()
            if row is None and self.audit.committed_hash is not None:
                return self.audit.committed_hash(seq)  # committed after this snapshot
            return None if row is None else str(row[0])

        check_seen_head(self.registry_id, str(self.address), self.audit.head(conn), hash_at)

    def check_contains(self, seq: int, head_hash: str, what: str) -> None:
        """Refuse a log that no longer holds event ``seq`` with ``head_hash`` -- the head an
        artifact (``what``) committed to when it was made: events were cut since."""
        with self.db.read() as conn:
            row = conn.execute("SELECT hash FROM audit_events WHERE seq = ?", [seq]).fetchone()
            head, _ = self.audit.head(conn)
        if row is None:
            raise VerificationError(
                f"{what} was made at audit event #{seq}, but this registry's log ends at "
                f"#{head}: events were cut since; restore the registry from a backup"
            )
        if row[0] != head_hash:
            raise VerificationError(
                f"{what} was made at audit event #{seq} with hash {head_hash[:16]}…, but this "
                f"registry's event #{seq} has {str(row[0])[:16]}…: the log was rewritten "
                "(or the artifact is from another registry)"
            )

    def verify_audit_events(self, events: list[AuditEvent]) -> int:
        """Check ``events`` against the chain up to signed checkpoints (see
        :meth:`AuditLog.verify_read`); returns the number of checkpoints that cover them."""
        with self.db.read() as conn:
            return self.audit.verify_read(conn, events, self.public_keys(conn))

    def verify_audit(
        self,
        *,
        expect_head: tuple[int, str] | None = None,
        since: tuple[int, str] | None = None,
    ) -> AuditReport:
        """Recompute the chain and check every checkpoint against the identities' keys
        (after the head ``since``, verified before, when given)."""
        with self.db.read() as conn:
            try:
                history = self.history(conn)
            except VerificationError:
                self.audit.check_links(conn, since)  # a broken link is the first thing to name
                raise
            return self.audit.verify(
                conn, KeyRing.of(history), expect_head=expect_head, since=since
            )

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


def _check_holds(identity: Identity, key: SigningKey) -> None:
    """``key`` (a private key on this machine) must be one of the identity's active keys."""
    held = identity.key(key.fingerprint)
    if held is not None and held.status is KeyStatus.ACTIVE:
        return
    active = ", ".join(f"{k.key_fingerprint[:16]}… ({k.label})" for k in identity.active_keys)
    why = (
        "is not enrolled for it"
        if held is None
        else f"was {held.status.value} at audit event #{held.ended_seq} ({held.end_reason})"
    )
    raise SigningKeyError(
        f"the private key at {key.path} (fingerprint {key.fingerprint[:16]}…) {why}; "
        f"{identity.name!r} signs with {active or 'no active key'}: use one of those, or have "
        f"an admin enrol this one (`loraledger keys add-key {identity.name} --public-key FILE`)"
    )


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


__all__ = [
    "DB_FILE",
    "DEFAULT_REGISTRY",
    "REGISTRY_ENV",
    "SYSTEM_ACTOR",
    "Change",
    "Core",
    "default_registry_path",
    "identity_from_row",
    "registry_location",
]
