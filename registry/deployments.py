"""The deployment history of environments: one signed record per promotion, rollback or
retirement, newest last. The rules live in :mod:`loraledger.policies.deployments`.

An environment runs at most one version of each adapter name -- one track per name -- and
any number of names; each record of format 3 changes one track (:func:`running_after`
says what an environment runs after its records). The records of an environment form one
chain whatever their track, so a record deleted from one track breaks the chain of all.

Each record is signed by its actor and chained to the environment's previous one (its
id and the sha256 of its signed payload), and commits to the audit head at its time.
What an environment runs is read from these records, checked where it is read: every row
against its signed payload and against the audit event that recorded it, the rows of an
environment exactly the deployments the audit log recorded, in order, and the log not
cut short (:mod:`.crosscheck`). A deleted, edited or inserted deployment row is refused by
everything that asks what runs -- promote, rollback, sync, serving, trace, evidence.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from loraledger.errors import ConcurrentChange, UsageError, VerificationError

from .audit import canonical_json
from .core import Core
from .crosscheck import RESTORE, check_row, check_same_ids
from .db import Connection
from .keys import SigningKey, verify_signature
from .models import AuditEvent, Deployment, Role, RunningTrack, running_after, track_head
from .permissions import Action

DEPLOY_EVENTS = ("deploy.promote", "deploy.rollback", "deploy.retire")
_COLUMNS = (
    "id, seq, environment, adapter_name || '@v' || adapter_version, artifact_digest, action, "
    "reason, gate_check_id, approval_ids, policy_sha256, created_at, created_by, payload, "
    "key_fingerprint, signature, track"
)
# The fields a deployment's audit event records (the event's key: the Deployment field).
_AUDITED = {
    "deployment_id": "id",
    "seq": "seq",
    "adapter": "adapter",
    "artifact_digest": "artifact_digest",
    "reason": "reason",
    "gate_check_id": "gate_check_id",
    "approval_ids": "approval_ids",
    "policy_sha256": "policy_sha256",
    "track": "track",  # format 3 on
}
_SIGNED = (
    "id", "seq", "environment", "adapter", "artifact_digest", "action", "reason",
    "gate_check_id", "approval_ids", "policy_sha256", "created_at", "created_by",
)  # fmt: skip


def payload_sha256(deployment: Deployment) -> str | None:
    if deployment.payload is None:
        return None
    return hashlib.sha256(deployment.payload.encode("utf-8")).hexdigest()


def link_to(previous: Deployment | None) -> dict[str, Any] | None:
    """What a deployment's signed payload says of the one it follows."""
    if previous is None:
        return None
    return {"id": previous.id, "payload_sha256": payload_sha256(previous)}


def signed_fields(deployment: Deployment) -> dict[str, Any]:
    """The fields of ``deployment`` its signature covers, as JSON values."""
    dumped = deployment.model_dump(mode="json")
    fields = {field: dumped[field] for field in _SIGNED}
    if deployment.track is not None:  # format 3 on: the track is part of what was signed
        fields["track"] = deployment.track
    return fields


class Deployments:
    def __init__(self, core: Core) -> None:
        self._core = core

    def history(self, environment: str, name: str | None = None) -> list[Deployment]:
        """The environment's deployments (those of adapter ``name`` only, when given),
        oldest first, each checked against what was signed and audited."""
        with self._core.db.read() as conn:
            history = self._history_in(conn, environment)
        return history if name is None else [d for d in history if d.name == name]

    def _history_in(self, conn: Connection, environment: str) -> builtins.list[Deployment]:
        history = _stored(conn, environment)
        events = self._core.audited(conn, DEPLOY_EVENTS, f"env:{environment}")
        self._check(conn, environment, history, events)
        return history

    def environments(self) -> builtins.list[str]:
        """Every environment that has (or had) a deployment, by name."""
        with self._core.db.read() as conn:
            return _environments(conn)

    def of_version(self, digest: str) -> list[Deployment]:
        """Every deployment (any environment) of the version with ``digest``, oldest first."""
        found = [
            d
            for environment in self.environments()
            for d in self.history(environment)
            if d.artifact_digest == digest
        ]
        return sorted(found, key=lambda d: (d.created_at, d.seq))

    def running(self, environment: str, at: datetime | None = None) -> dict[str, Deployment]:
        """What ``environment`` runs now (or ran at ``at``): for each adapter name, the
        deployment that put its version there, as recorded (checked, whoever signed it)."""
        history = self.history(environment)
        return running_after(d for d in history if at is None or d.created_at <= at)

    def current(self, environment: str, name: str | None = None) -> Deployment | None:
        """The deployment of what ``environment`` runs of adapter ``name`` (None: runs
        none of it), as recorded; what may be served is :meth:`serving`. Without ``name``,
        the environment must run at most one adapter (:class:`~loraledger.errors.
        UsageError` naming them otherwise)."""
        return self._one(environment, name, self.running(environment))

    def serving(self, environment: str, name: str | None = None) -> Deployment | None:
        """:meth:`current`, refused when the key that signed it was not valid at its
        place in the chain (retired, or compromised there): a thief's promotion is never
        served; roll back (a valid key signs that) or promote again."""
        with self._core.db.session(), self._core.db.read() as conn:
            history = self._history_in(conn, environment)
            deployment = self._one(environment, name, running_after(history))
            if deployment is None:
                return None
            problem = self._signer_problem(conn, deployment)
        if problem is not None:
            raise VerificationError(
                f"{problem}; it is not served: roll {deployment.name} back (`loraledger "
                f"rollback {deployment.name} --env {environment} --reason R`) or promote a "
                "version again"
            )
        return deployment

    @staticmethod
    def _one(
        environment: str, name: str | None, running: dict[str, Deployment]
    ) -> Deployment | None:
        if name is not None:
            return running.get(name)
        if len(running) > 1:
            raise UsageError(
                f"{environment} runs {len(running)} adapters ({', '.join(running)}); name "
                "the one you mean (--name NAME)"
            )
        return next(iter(running.values()), None)

    def signer_problem(self, deployment: Deployment) -> str | None:
        """Why ``deployment``'s signature is not valid at its place in the audit chain
        (the key retired or compromised there); None when it is."""
        with self._core.db.session(), self._core.db.read() as conn:
            self._history_in(conn, deployment.environment)
            return self._signer_problem(conn, deployment)

    def _signer_problem(
        self, conn: Connection, deployment: Deployment, placed: int | None = None
    ) -> str | None:
        """(``placed``: the seq of the record's audit event, when the caller knows it.)"""
        if deployment.key_fingerprint is None:
            return None  # format 1, before records were signed: its audit event vouches
        if placed is None:
            placed = self._places(conn, deployment.environment)[deployment.id]
        signer = self._core.trusted_identities(conn).get(deployment.created_by)
        problem = (
            signer.key_problem(deployment.key_fingerprint, placed)
            if signer is not None
            else f"{deployment.created_by!r} is not an identity"
        )
        if problem is None:
            return None
        return (
            f"deployment #{deployment.seq} of {deployment.environment} ({deployment.action} "
            f"of {deployment.adapter}) was signed by {deployment.created_by!r} with a key not "
            f"valid at its place (audit event #{placed}): {problem}"
        )

    def everywhere(self) -> dict[str, dict[str, Deployment]]:
        """What every environment runs now: by environment, by adapter name, the
        deployment that put the version there (environments running nothing left out)."""
        running: dict[str, dict[str, Deployment]] = {}
        with self._core.db.session(), self._core.db.read() as conn:
            for environment in _environments(conn):
                tracks = running_after(self._history_in(conn, environment))
                if tracks:
                    running[environment] = tracks
        return running

    def tracks(self, environment: str | None = None) -> builtins.list[RunningTrack]:
        """One entry per track running now (of ``environment``, or of every one), by
        environment then name, saying why its deployment's signature is not valid at its
        place, if it is not (:meth:`signer_problem`)."""
        found = []
        # one session: the log's events and the identities are read and verified once
        with self._core.db.session(), self._core.db.read() as conn:
            names = _environments(conn) if environment is None else [environment]
            for env in names:
                running = running_after(self._history_in(conn, env))
                places = self._places(conn, env) if running else {}
                for deployment in running.values():
                    problem = self._signer_problem(conn, deployment, places[deployment.id])
                    found.append(RunningTrack.of(deployment, problem))
        return found

    def _places(self, conn: Connection, environment: str) -> dict[str, int]:
        """Each deployment of ``environment`` (by id): the seq of its audit event."""
        events = self._core.audited(conn, DEPLOY_EVENTS, f"env:{environment}")
        return {str(e.payload.get("deployment_id")): e.seq for e in events}

    def record(
        self,
        deployment: Deployment,
        key: SigningKey,
        needs: Action | Collection[Role],
        *,
        after_seq: int,
    ) -> Deployment:
        """Sign and append ``deployment`` (a change of the track of its adapter's name) if
        the newest record of that track is still ``after_seq`` (0: none); otherwise
        someone else changed the track first. Other tracks of the environment may have
        changed since: the record follows whatever the environment's newest is."""
        name, version = deployment.adapter.rsplit("@v", 1)
        environment = deployment.environment
        with self._core.change(key, needs) as change:
            conn = change.conn
            history = self._history_in(conn, environment)
            newest = track_head(history, name)
            if newest != after_seq:
                raise ConcurrentChange(
                    f"{name}'s track in {environment!r} changed while this ran (now at "
                    f"deployment #{newest}); look at `loraledger deployments --env "
                    f"{environment} --name {name}` and try again"
                )
            deployment = deployment.model_copy(
                update={"seq": (history[-1].seq if history else 0) + 1, "track": name}
            )
            head_seq, head_hash = self._core.audit.head(conn)
            payload = canonical_json(
                {
                    **signed_fields(deployment),
                    "previous": link_to(history[-1] if history else None),
                    "registry_id": self._core.registry_id,
                    "audit_head": {"seq": head_seq, "hash": head_hash},
                }
            )
            deployment = deployment.model_copy(
                update={
                    "format_version": Deployment.FORMAT_VERSION,
                    "payload": payload,
                    "key_fingerprint": key.fingerprint,
                    "signature": key.sign(payload.encode("utf-8")),
                }
            )
            conn.execute(
                "INSERT INTO deployments (id, seq, environment, adapter_name, adapter_version, "
                "artifact_digest, action, reason, gate_check_id, approval_ids, policy_sha256, "
                "created_at, created_by, payload, key_fingerprint, signature, track) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    deployment.id,
                    deployment.seq,
                    environment,
                    name,
                    int(version),
                    deployment.artifact_digest,
                    deployment.action,
                    deployment.reason,
                    deployment.gate_check_id,
                    json.dumps(list(deployment.approval_ids)),
                    deployment.policy_sha256,
                    deployment.created_at,
                    deployment.created_by,
                    deployment.payload,
                    deployment.key_fingerprint,
                    deployment.signature,
                    deployment.track,
                ],
            )
            change.record(
                f"deploy.{deployment.action}",
                f"env:{environment}",
                {
                    "deployment_id": deployment.id,
                    "seq": deployment.seq,
                    "track": deployment.track,
                    "adapter": deployment.adapter,
                    "artifact_digest": deployment.artifact_digest,
                    "reason": deployment.reason,
                    "gate_check_id": deployment.gate_check_id,
                    "approval_ids": list(deployment.approval_ids),
                    "policy_sha256": deployment.policy_sha256,
                    "signature": deployment.signature,
                    "payload_sha256": payload_sha256(deployment),
                },
            )
        return deployment

    # --- checking what was read ---------------------------------------------------------

    def check_all(self, conn: Connection, events: builtins.list[AuditEvent]) -> int:
        """Every environment's rows against ``events`` (the log's deployment events,
        verified by the caller); returns the rows checked."""
        checked = 0
        for environment in _environments(conn):
            history = _stored(conn, environment)
            mine = [e for e in events if e.subject == f"env:{environment}"]
            self._check(conn, environment, history, mine)
            checked += len(history)
        return checked

    def _check(
        self,
        conn: Connection,
        environment: str,
        history: builtins.list[Deployment],
        events: builtins.list[AuditEvent],
    ) -> None:
        check_same_ids(
            "deployments",
            environment,
            [d.id for d in history],
            [(str(e.payload.get("deployment_id")), e.seq) for e in events],
        )
        identities = self._core.trusted_identities(conn)
        previous: Deployment | None = None
        for deployment, event in zip(history, events, strict=True):
            _check_against_event(deployment, event)
            signer = identities.get(deployment.created_by)
            held = {k.key_fingerprint: k.public_key_pem for k in signer.keys} if signer else {}
            check_signed(deployment, previous, held)
            previous = deployment


def _stored(conn: Connection, environment: str) -> list[Deployment]:
    """The environment's rows as stored, oldest first (unchecked)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM deployments WHERE environment = ? ORDER BY seq", [environment]
    ).fetchall()
    return [_deployment(r) for r in rows]


def _environments(conn: Connection) -> list[str]:
    """Environments with deployment rows or deployment events (a deleted row's too)."""
    rows = conn.execute(
        "SELECT DISTINCT environment FROM deployments UNION "
        "SELECT DISTINCT substr(subject, 5) FROM audit_events "
        "WHERE action IN ('deploy.promote', 'deploy.rollback', 'deploy.retire') ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def _check_against_event(deployment: Deployment, event: AuditEvent) -> None:
    dumped = deployment.model_dump(mode="json")
    stored = {key: dumped.get(field) for key, field in _AUDITED.items()}
    if deployment.track is None and "track" not in event.payload:
        del stored["track"]  # formats 1 and 2: neither the row nor its event has one
    stored.update(actor=deployment.created_by, action=deployment.action.value)
    recorded = {**event.payload, "actor": event.actor, "action": event.action.split(".")[1]}
    if "signature" in event.payload or deployment.signature is not None:
        stored["signature"] = deployment.signature  # a signed record cannot lose it
    check_row("deployments", deployment.id, stored, recorded, f"audit event #{event.seq}")


def check_signed(
    deployment: Deployment,
    previous: Deployment | None,
    signer_keys: Mapping[str, str],
) -> None:
    """A signed record: its fields are its payload, its signature verifies with the key
    it names, one the actor held (``signer_keys``: fingerprint -> PEM of each; empty: no
    key known for the actor), and it follows the environment's previous record. Used on
    the registry's rows and on an evidence pack's copy of them."""
    where = f"deployments row {deployment.id} ({deployment.environment} #{deployment.seq})"
    if deployment.payload is None and deployment.signature is None:
        return  # format 1, before records were signed: its audit event vouches for it
    if deployment.payload is None or deployment.signature is None:
        raise VerificationError(f"{where} has lost its signature or its payload; {RESTORE}")
    try:
        signed: Any = json.loads(deployment.payload)
    except ValueError:
        signed = None
    if not isinstance(signed, dict):
        raise VerificationError(f"{where}: its signed payload is not a JSON object; {RESTORE}")
    check_row("deployments", deployment.id, signed_fields(deployment), signed, "its signed payload")
    if deployment.track is None and "track" in signed:  # a track's record made whole-environment
        raise VerificationError(
            f"{where}: its track is nothing but its signed payload says {signed['track']!r}; "
            f"{RESTORE}"
        )
    signer_pem = signer_keys.get(str(deployment.key_fingerprint))
    if signer_pem is None:
        raise VerificationError(
            f"{where}: its key {str(deployment.key_fingerprint)[:16]}… is not a key "
            f"{deployment.created_by!r} was ever enrolled with; {RESTORE}"
        )
    if not verify_signature(signer_pem, deployment.signature, deployment.payload.encode("utf-8")):
        raise VerificationError(
            f"{where}: its signature does not verify with {deployment.created_by!r}'s "
            f"registered key; {RESTORE}"
        )
    if signed.get("previous") != link_to(previous):
        raise VerificationError(
            f"{where} does not follow the environment's previous deployment "
            f"({previous.id if previous else 'none'}): a record was deleted, inserted or "
            f"edited; {RESTORE}"
        )


def _deployment(row: tuple[Any, ...]) -> Deployment:
    signed = row[12] is not None
    return Deployment(
        id=row[0],
        seq=row[1],
        environment=row[2],
        adapter=row[3],
        artifact_digest=row[4],
        action=row[5],
        reason=row[6],
        gate_check_id=row[7],
        approval_ids=tuple(json.loads(row[8])),
        policy_sha256=row[9],
        created_at=row[10],
        created_by=row[11],
        payload=row[12],
        key_fingerprint=row[13],
        signature=row[14],
        track=row[15],
        format_version=3 if row[15] is not None else 2 if signed else 1,
    )


__all__ = [
    "DEPLOY_EVENTS",
    "Deployments",
    "check_signed",
    "link_to",
    "payload_sha256",
    "running_after",
    "signed_fields",
    "track_head",
]
