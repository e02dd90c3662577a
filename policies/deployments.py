"""Environments: promotion through the gate, one-step rollback, and retirement -- each of
one adapter name's track, leaving the environment's other adapters as they are.

``promote`` succeeds only when the environment's gate passes now -- evidence and valid
approvals -- and the artifact's signature and hashes verify at that moment, and never
by someone who registered or trained the version, whatever the policy says. ``rollback``
returns a track in one step to the version it ran before (or a named earlier one that ran
there), verified first; it needs a reviewer or admin and a reason, not fresh approvals. A
version that no longer verifies (tampered, or signed by a key revoked since) is never a
rollback target. ``retire`` takes a name out of an environment: a reviewer's or admin's
act with a reason, under the policy in force (which must name the environment; its
sha256 is recorded), undone by a rollback of the name.

Each appends to the environment's history only if nobody changed the same track since it
looked (:meth:`Deployments.record`): of two promotions of one name at once exactly one
wins and the other is told to look again; promotions of two names both land. Refusals are
audited (``deploy.refused``).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import NoReturn

from loraledger.registry import Registry
from loraledger.registry.audit import utcnow
from loraledger.registry.keys import SigningKey
from loraledger.registry.models import Deployment, DeploymentAction, running_after, track_head
from loraledger.registry.permissions import Action

from loraledger.errors import (
    Conflict,
    GateRefused,
    LedgerError,
    NotFound,
    NothingDeployed,
    PermissionDenied,
    PolicyNotInForce,
    UsageError,
    VerificationError,
)

from .release import LoadedPolicy, resolve_policy
from .tally import authors


def promote(
    registry: Registry,
    ref: str,
    environment: str,
    *,
    actor: str | None,
    policy: LoadedPolicy | Path | None = None,
) -> Deployment:
    """Make ``ref`` what ``environment`` runs, if its gate passes now under the registry's
    policy in force (``policy``, if given, must be that policy)."""
    from .gates import check_gate

    key = registry.act_as(actor, Action.PROMOTE)
    try:  # the registry's policy in force, never a file the promoter picked
        loaded = resolve_policy(registry, policy, deciding=True)
    except PolicyNotInForce as error:
        _refuse(registry, key, environment, str(error), PolicyNotInForce)
    loaded.environment(environment)
    version = registry.adapters.get(ref)
    history = registry.deployments.history(environment)
    current = running_after(history).get(version.name)
    if current is not None and current.artifact_digest == version.digest:
        raise Conflict(f"{version.ref} is already what {environment} runs")
    made = authors(registry, version).part_of(key.name, key.fingerprint)
    if made:  # whatever the policy says: a policy without approvals does not waive it
        _refuse(
            registry, key, environment,
            f"{made} {version.ref}; separation of duties: someone who did not make it "
            "promotes it, whatever the policy says",
            PermissionDenied,
        )  # fmt: skip
    check = check_gate(registry, version.ref, environment, actor=key.name, policy=loaded)
    if not check.passed:
        failed = "; ".join(f"{r.rule}: {r.message}" for r in check.rules if not r.passed)
        _refuse(
            registry, key, environment, f"the gate for {environment} fails: {failed}", GateRefused
        )
    try:
        registry.adapters.verify(version.ref)
    except LedgerError as error:
        _refuse(
            registry, key, environment, f"{version.ref} does not verify: {error}",
            VerificationError,
        )  # fmt: skip
    approvals = next((r for r in check.rules if r.kind == "approvals"), None)
    deployment = _entry(
        environment,
        version.ref,
        version.digest,
        "promote",
        f"gate check {check.id} passed",
        key,
        gate_check_id=check.id,
        approval_ids=tuple(approvals.evidence["approval_ids"]) if approvals else (),
        policy_sha256=loaded.sha256,
    )
    return registry.deployments.record(
        deployment, key, Action.PROMOTE, after_seq=track_head(history, version.name)
    )


def rollback(
    registry: Registry,
    environment: str,
    *,
    reason: str,
    actor: str | None,
    name: str | None = None,
    to: str | None = None,
) -> Deployment:
    """Put back the version of adapter ``name`` that ``environment`` ran before (or
    ``to``, which ran there); the environment's other adapters stay as they are. Without
    ``name``: ``to``'s, or the one name the environment ever ran. A retired name gets
    back the version it ran last."""
    if not reason.strip():
        raise UsageError("a rollback needs a reason: pass --reason TEXT")
    key = registry.act_as(actor, Action.ROLLBACK)
    wanted = registry.adapters.get(to) if to is not None else None
    if wanted is not None and name is not None and wanted.name != name:
        raise UsageError(f"--to {wanted.ref} is not a version of {name}; name one of {name}'s")
    history = registry.deployments.history(environment)
    if not history:
        _refuse(
            registry, key, environment, f"nothing was ever deployed to {environment}",
            NothingDeployed,
        )  # fmt: skip
    name = name or (wanted.name if wanted is not None else _only_name(environment, history))
    earlier = rollback_targets(history, name)
    if wanted is not None:
        earlier = [d for d in earlier if d.artifact_digest == wanted.digest]
        if not earlier:
            _refuse(
                registry, key, environment,
                f"{wanted.ref} did not run in {environment} before its current deployment; "
                "a rollback goes back to an earlier deployment",
            )  # fmt: skip
    skipped = []
    for candidate in earlier:
        try:
            registry.adapters.verify(candidate.adapter)
        except LedgerError as error:
            skipped.append(f"{candidate.adapter}: {error}")
            continue
        deployment = _entry(
            environment, candidate.adapter, candidate.artifact_digest, "rollback", reason, key
        )
        return registry.deployments.record(
            deployment, key, Action.ROLLBACK, after_seq=track_head(history, name)
        )
    why = "; ".join(skipped) if skipped else f"no earlier version of {name} ran there"
    _refuse(
        registry, key, environment, f"no version to roll {name} in {environment} back to ({why})"
    )


def retire(
    registry: Registry,
    name: str,
    environment: str,
    *,
    reason: str,
    actor: str | None,
) -> Deployment:
    """Take adapter ``name`` out of ``environment`` (it runs no version of it after);
    the environment's other adapters stay. Undone by :func:`rollback` of the name."""
    if not reason.strip():
        raise UsageError("a retirement needs a reason: pass --reason TEXT")
    key = registry.act_as(actor, Action.RETIRE)
    try:  # the policy in force must name the environment; the record cites it
        loaded = resolve_policy(registry, None, deciding=True)
        loaded.environment(environment)
    except (PolicyNotInForce, NotFound) as error:
        _refuse(registry, key, environment, str(error), type(error))
    history = registry.deployments.history(environment)
    running = running_after(history)
    current = running.get(name)
    if current is None:
        runs = ", ".join(running) or "nothing"
        _refuse(
            registry, key, environment,
            f"{environment} runs no version of {name} (it runs {runs})", NothingDeployed,
        )  # fmt: skip
    deployment = _entry(
        environment, current.adapter, current.artifact_digest, "retire", reason, key,
        policy_sha256=loaded.sha256,
    )  # fmt: skip
    return registry.deployments.record(
        deployment, key, Action.RETIRE, after_seq=track_head(history, name)
    )


def rollback_targets(history: list[Deployment], name: str) -> list[Deployment]:
    """The deployments of adapter ``name`` a rollback may put back, newest first, one
    per digest (not yet verified): every version of it that ran before the one its track
    runs now (any, when it runs none), never that one. ``history``: the environment's."""
    current = running_after(history).get(name)
    earlier: list[Deployment] = []
    digests = set() if current is None else {current.artifact_digest}
    for deployment in reversed(history):
        if (
            deployment.name == name
            and deployment.action is not DeploymentAction.RETIRE
            and (current is None or deployment.seq < current.seq)
            and deployment.artifact_digest not in digests
        ):
            earlier.append(deployment)
            digests.add(deployment.artifact_digest)
    return earlier


def _only_name(environment: str, history: list[Deployment]) -> str:
    names = sorted({d.name for d in history})
    if len(names) == 1:
        return names[0]
    raise UsageError(
        f"{environment} has run {len(names)} adapters ({', '.join(names)}); name the one to "
        f"roll back: `loraledger rollback NAME --env {environment} --reason R`"
    )


def _entry(
    environment: str,
    adapter: str,
    digest: str,
    action: str,
    reason: str,
    key: SigningKey,
    *,
    gate_check_id: str | None = None,
    approval_ids: tuple[str, ...] = (),
    policy_sha256: str | None = None,
) -> Deployment:
    """A new history entry (its number is assigned when it is appended)."""
    return Deployment(
        id=str(uuid.uuid4()),
        seq=0,
        environment=environment,
        adapter=adapter,
        artifact_digest=digest,
        action=DeploymentAction(action),
        reason=reason,
        gate_check_id=gate_check_id,
        approval_ids=approval_ids,
        policy_sha256=policy_sha256,
        created_at=utcnow(),
        created_by=key.name,
    )


def _refuse(
    registry: Registry,
    key: SigningKey,
    environment: str,
    message: str,
    error: type[LedgerError] = Conflict,
) -> NoReturn:
    """Audit the refusal (``deploy.refused``), then raise ``error``."""
    with registry.change(key, Action.PROMOTE) as change:  # promote, rollback, retire alike
        change.record("deploy.refused", f"env:{environment}", {"reason": message})
    raise error(f"refused: {message}")


__all__ = ["promote", "retire", "rollback", "rollback_targets"]
