"""The auditor's tools: trace a deployment or a version to everything it came from, and
find everything a training record reached.

``trace_version`` walks version -> training run -> datasets -> base -> provenance
attestation -> evaluations (and their test-result attestations) -> gate checks ->
approvals -> deployments -> audit log, and *verifies* every link as it goes (signature and
files now, the training record against its audit event, each dataset's file and Merkle
root against what the run recorded, the base's files against its digest, each DSSE
attestation with its signer's key and against what it attests, each evaluation's and gate
check's stored results against their audit events, each approval's signature, and the
version's audit events against the chain up to signed checkpoints; `audit verify`
checks the whole chain). A link that does not verify is reported with why;
the trace is complete only when every link verifies.

``trace_environment(env, at=..., name=...)`` starts from what an environment ran of one
adapter at a moment; ``trace_tracks`` traces every adapter it ran then.

``impact(record)`` lists every dataset version holding a record, every adapter version
trained on one of them, and every environment running one now -- what a data-erasure
request needs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.attestations import subject_digests
from loraledger.registry.datasets import record_sha256
from loraledger.registry.models import Approval, Attestation, Deployment, running_after
from pydantic import BaseModel, ConfigDict

from loraledger.errors import LedgerError, NothingDeployed, UsageError, VerificationError

from .tally import verify_approval


class Link(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    ref: str
    verified: bool
    detail: dict[str, Any]
    problem: str | None = None


class Trace(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    deployment: Deployment | None
    links: tuple[Link, ...]

    @property
    def complete(self) -> bool:
        return all(link.verified for link in self.links)


class Impact(BaseModel):
    model_config = ConfigDict(frozen=True)

    record_sha256: str
    datasets: tuple[str, ...]
    adapters: tuple[str, ...]
    environments: dict[str, tuple[str, ...]]  # environment -> the affected versions it runs now


def trace_environment(
    registry: Registry, environment: str, at: datetime | None = None, name: str | None = None
) -> Trace:
    """Trace what ``environment`` ran of adapter ``name`` at ``at`` (now when None);
    without ``name`` the environment must have run one adapter then."""
    with registry.db.session():
        chosen, moment = _ran(registry, environment, at, None if name is None else [name])
        if len(chosen) > 1:  # said before any of them is traced
            raise UsageError(
                f"{environment} runs {len(chosen)} adapters ({', '.join(chosen)}); name the "
                "one to trace (--name NAME)"
            )
        (deployment,) = chosen.values()
        return _trace_deployment(registry, deployment, moment)


def trace_tracks(
    registry: Registry,
    environment: str,
    at: datetime | None = None,
    names: list[str] | None = None,
) -> list[Trace]:
    """One trace per adapter ``environment`` ran at ``at`` (now when None), by name (only
    ``names``, when given; each must have run there then)."""
    with registry.db.session():  # the log's events and identities read and verified once
        chosen, moment = _ran(registry, environment, at, names)
        return [_trace_deployment(registry, deployment, moment) for deployment in chosen.values()]


def _ran(
    registry: Registry, environment: str, at: datetime | None, names: list[str] | None
) -> tuple[dict[str, Deployment], str]:
    """The deployments of what ``environment`` ran at ``at`` (of ``names`` only, when
    given: each must have run then), by name, and the moment said in words."""
    history = registry.deployments.history(environment)
    if not history:
        raise NothingDeployed(f"nothing was ever deployed to {environment}")
    moment = "now" if at is None else f"at {at:%Y-%m-%d %H:%M:%S} UTC"
    running = running_after(d for d in history if at is None or d.created_at <= at)
    if not running and at is not None and at < history[0].created_at:
        raise NothingDeployed(
            f"nothing was deployed to {environment} at {at:%Y-%m-%d %H:%M:%S} UTC; its first "
            f"deployment is at {history[0].created_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    for name in names or []:
        if name not in running:
            runs = ", ".join(running) or "nothing"
            raise NothingDeployed(
                f"{environment} ran no version of {name} {moment} (it ran {runs})"
            )
    if not running:
        raise NothingDeployed(f"{environment} ran nothing {moment} (every adapter retired)")
    chosen = {n: d for n, d in running.items() if names is None or n in names}
    return chosen, moment


def _trace_deployment(registry: Registry, deployment: Deployment, moment: str) -> Trace:
    environment = deployment.environment
    trace = trace_version(registry, deployment.adapter)
    problem = registry.deployments.signer_problem(deployment)
    signed = Link(
        kind="deployment signature",
        ref=f"{environment} #{deployment.seq}",
        verified=problem is None,
        detail={
            "action": deployment.action,
            "by": deployment.created_by,
            "key": (deployment.key_fingerprint or "")[:16],
        },
        problem=problem,
    )
    return trace.model_copy(
        update={
            "subject": f"{environment} {moment}: {trace.subject}",
            "deployment": deployment,
            "links": (signed, *trace.links),
        }
    )


def trace_version(registry: Registry, ref: str) -> Trace:
    """Every link of ``ref``'s history, each verified."""
    with registry.db.session():  # many small reads: one connection
        return _trace_version(registry, ref)


def _trace_version(registry: Registry, ref: str) -> Trace:
    version = registry.adapters.get(ref)
    links: list[Link] = []

    def link(kind: str, name: str, check: Callable[[], dict[str, Any]]) -> None:
        try:
            links.append(Link(kind=kind, ref=name, verified=True, detail=check()))
        except LedgerError as error:
            links.append(Link(kind=kind, ref=name, verified=False, detail={}, problem=str(error)))

    def adapter() -> dict[str, Any]:
        report = registry.adapters.verify(version.ref)
        return {"digest": report.digest, "signer": report.signer, "files": report.files_verified}

    link("adapter", version.ref, adapter)
    try:
        run = registry.adapters.training_run(version.ref)
    except LedgerError as error:
        run = None
        links.append(
            Link(kind="training run", ref="?", verified=False, detail={}, problem=str(error))
        )
    else:
        if run is None:
            links.append(
                Link(
                    kind="training run", ref="none", verified=False, detail={},
                    problem="registered from elsewhere: no training-run record",
                )
            )  # fmt: skip
    if run is not None:
        links.append(
            Link(
                kind="training run",
                ref=run.id,
                verified=True,
                detail={
                    "config_sha256": run.config_sha256,
                    "code": run.code.model_dump(mode="json"),
                    "seed": run.seed,
                    "libraries": run.libraries,
                    "hardware": run.hardware.model_dump(mode="json"),
                    "actor": run.actor,
                    "finished_at": run.finished_at.isoformat(),
                },
            )
        )
        for use in run.datasets:

            def dataset(use: Any = use) -> dict[str, Any]:
                found = registry.datasets.verify(use.ref)
                if found.merkle_root != use.merkle_root or found.file_sha256 != use.file_sha256:
                    raise VerificationError(f"{use.ref} is not the data the training run recorded")
                return {
                    "file_sha256": found.file_sha256,
                    "merkle_root": found.merkle_root,
                    "records": found.record_count,
                    "source": found.source,
                    "license": found.license,
                    "pii": {k: f.count for k, f in found.pii.items()},
                }

            link("dataset", use.ref, dataset)

        def base() -> dict[str, Any]:
            found = registry.base_models.verify(run.base_ref)
            if found.digest != run.base_digest:
                raise VerificationError(f"{run.base_ref} is not the base the training run recorded")
            return {"digest": found.digest, "origin": found.origin}

        link("base model", run.base_ref, base)
    for attestation in registry.attestations.list(subject=version.ref, kind="provenance"):

        def provenance(attestation: Attestation = attestation) -> dict[str, Any]:
            statement = registry.attestations.verify(attestation)
            if subject_digests(statement) != {f.path: f.sha256 for f in version.files}:
                raise VerificationError("its signed subjects are not the version's files")
            return {"predicate": statement["predicateType"], "signer": attestation.signer}

        link("provenance attestation", attestation.id, provenance)
    try:  # what engines were given instead of the signed files (a GGUF for llama.cpp)
        derivations = registry.derivations.of(f"adapter:{version.ref}")
    except LedgerError as error:
        links.append(
            Link(kind="derivation", ref="?", verified=False, detail={}, problem=str(error))
        )
        derivations = []
    for derivation in derivations:
        made_from_it = derivation.source_digest == version.digest
        links.append(
            Link(
                kind="derivation",
                ref=derivation.name,
                verified=made_from_it,
                detail={
                    "sha256": derivation.digest,
                    "tools": [t["name"] for t in derivation.tools],
                    "signer": derivation.signer,
                    "created_at": derivation.created_at.isoformat(),
                },
                problem=None if made_from_it else "made from other bytes than the version's",
            )
        )
    for summary in registry.evaluations.list(version.ref):

        def evaluation(run_id: str = summary.id) -> dict[str, Any]:
            found = registry.evaluations.get(run_id)
            return {
                "suite": found.suite_name,
                "suite_digest": found.suite_digest,
                "status": found.status,
                "metrics": {f"{m.task}/{m.metric}": m.value for m in found.metrics},
            }

        link("evaluation", summary.id, evaluation)
        for attestation in registry.attestations.list(subject=summary.id):

            def test_result(
                run_id: str = summary.id, att: Attestation = attestation
            ) -> dict[str, Any]:
                statement = registry.attestations.verify(att)
                found = registry.evaluations.get(run_id)
                results = statement["predicate"]["configuration"][1]["digest"]["sha256"]
                if (
                    subject_digests(statement) != {found.subject.ref: found.subject.artifact_digest}
                    or results != found.results_sha256
                ):
                    raise VerificationError("it attests other results than the run's")
                tests = statement["predicate"]
                return {
                    "signer": att.signer,
                    "passed": len(tests["passedTests"]),
                    "failed": len(tests["failedTests"]),
                }

            link("test-result attestation", attestation.id, test_result)
    for check_id in registry.gate_checks.ids(version.ref):

        def gate(check_id: str = check_id) -> dict[str, Any]:
            check = registry.gate_checks.get(check_id)  # against its audit event
            return {
                "environment": check.environment,
                "policy_sha256": check.policy_sha256,
                "passed": check.passed,
            }

        link("gate check", check_id, gate)

    for approval in registry.approvals.list(version.ref):

        def signed(approval: Approval = approval) -> dict[str, Any]:
            if not verify_approval(registry, approval):
                raise VerificationError("its signature does not verify with the signer's key")
            return {
                "decision": approval.decision,
                "environment": approval.environment,
                "signer": approval.signer,
                "at": approval.created_at.isoformat(),
            }

        link("approval", approval.id, signed)

    def audit() -> dict[str, Any]:
        events = registry.audit_events(subject=f"adapter:{version.ref}")
        checkpoints = registry.verify_audit_events(events)
        return {
            "signed_checkpoints": checkpoints,
            "events": [f"#{e.seq} {e.action} by {e.actor}" for e in events],
        }

    link("audit log", "chain", audit)
    return Trace(
        subject=f"{version.ref} (sha256:{version.digest})", deployment=None, links=tuple(links)
    )


def impact(registry: Registry, record: Any) -> Impact:
    """Where a training record went: datasets, adapters trained on them, environments."""
    with registry.db.session():
        return _impact(registry, record_sha256(record))


def _impact(registry: Registry, digest: str) -> Impact:
    with registry.db.read() as conn:
        datasets = [
            f"{r[0]}@v{r[1]}"
            for r in conn.execute(
                "SELECT DISTINCT dataset_name, version FROM dataset_records WHERE sha256 = ? "
                "ORDER BY dataset_name, version",
                [digest],
            ).fetchall()
        ]
        adapters = [
            (f"{r[0]}@v{r[1]}", r[2])
            for r in conn.execute(
                "SELECT DISTINCT t.adapter_name, t.adapter_version, v.digest "
                "FROM training_runs t JOIN training_run_datasets d ON d.run_id = t.id "
                "JOIN dataset_records r ON r.dataset_name = d.dataset_name "
                "AND r.version = d.version "
                "JOIN adapter_versions v ON v.name = t.adapter_name "
                "AND v.version = t.adapter_version "
                "WHERE r.sha256 = ? ORDER BY 1",
                [digest],
            ).fetchall()
        ]
    affected = dict((digest, ref) for ref, digest in adapters)
    running = {
        environment: tuple(
            affected[d.artifact_digest] for d in tracks.values() if d.artifact_digest in affected
        )
        for environment, tracks in registry.deployments.everywhere().items()
    }
    environments = {environment: refs for environment, refs in running.items() if refs}
    return Impact(
        record_sha256=digest,
        datasets=tuple(datasets),
        adapters=tuple(ref for ref, _ in adapters),
        environments=environments,
    )


__all__ = [
    "Impact", "Link", "Trace", "impact", "trace_environment", "trace_tracks", "trace_version",
]  # fmt: skip
