"""Gate checks: a version judged against one environment of a release policy.

Every rule reads evidence the registry holds and verifies it on the way:

* thresholds -- the newest complete evaluation run of the version on the suite *as it is
  now* (same digest), read through :meth:`Evaluations.get` (its results checked against
  the audit log); no such run is a failure naming the command that produces one;
* data -- the training datasets' licenses and PII findings, from the training-run record
  (checked against its audit event);
* provenance -- the signature and every file verified now, a training-run record, a clean
  code tree.

The report lists every rule with what was measured, the bound and the evidence used, and
is recorded (:meth:`GateChecks.record`) with the policy's sha256 and a hash over all the
evidence.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from loraledger.harness.judge_check import accuracy_line
from loraledger.harness.statistics import INTERVALS, proportion_interval
from loraledger.registry import Registry
from loraledger.registry.audit import canonical_json, utcnow
from loraledger.registry.models import (
    AdapterVersion,
    GateCheck,
    RuleResult,
    TrainingRun,
)
from loraledger.registry.permissions import Action

from loraledger.errors import LedgerError

from .gate_rules import GateContext, gate_rule, registered_gate_rules
from .release import (
    ApprovalRule,
    DataRule,
    LoadedPolicy,
    ProvenanceRule,
    Threshold,
    resolve_policy,
)
from .tally import tally


def check_gate(
    registry: Registry,
    ref: str,
    environment: str,
    *,
    actor: str | None,
    policy: LoadedPolicy | Path | None = None,
) -> GateCheck:
    """Judge ``ref`` against ``environment`` of the registry's policy in force, and record
    the result. Under any other ``policy`` (a file), or on a read-only database account
    (an auditor's), the check is a dry run: judged the same way, recorded nowhere (see
    :func:`~.release.resolve_policy`). Raises only for bad
    input or when no policy is in force and none is given; failed rules are in the
    report."""
    # many small reads, then the record: one connection, opened once
    with registry.db.session(writable=True):
        return _check_gate(registry, ref, environment, actor=actor, policy=policy)


def _check_gate(
    registry: Registry,
    ref: str,
    environment: str,
    *,
    actor: str | None,
    policy: LoadedPolicy | Path | None,
) -> GateCheck:

    key = registry.act_as(actor, Action.GATE_CHECK)
    loaded = resolve_policy(registry, policy, deciding=False)
    version = registry.adapters.get(ref)
    resolved = loaded.rules_for(environment, version.name)  # with the adapter's overrides
    rules_of = resolved.policy
    context = GateContext(
        registry=registry,
        version=version,
        run=registry.adapters.training_run(version.ref),
        environment=environment,
        policy=rules_of,
    )

    def judged(after_evidence: bool) -> list[RuleResult]:
        """What each registered rule of this stage says, for the keys the policy names."""
        found: list[RuleResult] = []
        for rule in registered_gate_rules():
            setting = rules_of.setting(rule.name)
            if rule.after_evidence is after_evidence and setting is not None:
                source = resolved.source(rule.name)
                found += [
                    r.model_copy(update={"source": source}) for r in rule.judge(context, setting)
                ]
        return found

    results = judged(after_evidence=False)
    inputs = {
        "policy_sha256": loaded.sha256,
        "artifact_digest": version.digest,
        "environment": environment,
        "evidence": [r.evidence for r in results],
    }
    context.inputs_sha256 = hashlib.sha256(canonical_json(inputs).encode()).hexdigest()
    results += judged(after_evidence=True)
    check = GateCheck(
        format_version=GateCheck.FORMAT_VERSION,
        id=str(uuid.uuid4()),
        adapter=version.ref,
        artifact_digest=version.digest,
        environment=environment,
        policy_path=str(loaded.path),
        policy_sha256=loaded.sha256,
        passed=all(r.passed for r in results),
        rules=tuple(results),
        inputs_sha256=context.inputs_sha256,
        created_at=utcnow(),
        created_by=key.name,
    )
    if not loaded.in_force or not registry.may_append():
        return check  # a dry run (another file, or an auditor's read-only account)
    return registry.gate_checks.record(check, key)


def _threshold(evidence_of: GateContext, rule: Threshold) -> RuleResult:
    ref = evidence_of.ref
    suite = evidence_of.suite(rule.suite)
    runs, run = evidence_of.runs(rule.suite)
    command = f"`loraledger eval {ref} --suite {suite.name}`"
    evidence: dict[str, Any] = {
        "suite": suite.name,
        "suite_digest": suite.digest,
        "locator": rule.suite,  # as the policy names it: a built-in name or a folder
    }
    if run is None:
        why = (
            f"its results are of another version of suite {suite.name!r} (digest "
            f"{runs[-1].suite_digest[:16]}…, now {suite.digest[:16]}…); run {command}"
            if runs
            else f"no complete evaluation on suite {suite.name!r}; run {command}"
        )
        return RuleResult(
            kind="threshold", rule=rule.label, passed=False, bound=rule.bound, evidence=evidence,
            message=why,
        )  # fmt: skip
    evidence.update(run_id=run.id, results_sha256=run.results_sha256)
    found = [m for m in run.metrics if m.task == rule.task and m.metric == rule.metric]
    if not found:
        metrics = sorted({m.metric for m in run.metrics if m.task == rule.task})
        return RuleResult(
            kind="threshold", rule=rule.label, passed=False, bound=rule.bound, evidence=evidence,
            message=f"run {run.id[:8]} has no metric {rule.metric!r} for task {rule.task} "
            f"(it has {', '.join(metrics) or 'none'}); fix the policy",
        )  # fmt: skip
    metric = next((m for m in found if m.filter == "none"), found[0])
    value, n = metric.value, metric.sample_count
    said = f"{value:.3f} on {n} samples (run {run.id[:8]})"
    judged = run.settings.get("judge")
    if judged:  # how far the scorer itself can be trusted, beside what it scored
        evidence["judge"] = judged

    def result(passed: bool, message: str) -> RuleResult:
        if judged:
            message += f"; {accuracy_line(judged)}"
        return RuleResult(
            kind="threshold", rule=rule.label, passed=passed, measured=value, bound=rule.bound,
            evidence=evidence, message=message,
        )  # fmt: skip

    if rule.min_samples is not None and n < rule.min_samples:
        return result(
            False,
            f"{said}; the evidence cannot establish it: the policy asks for at least "
            f"{rule.min_samples} samples (evaluate on more: a larger suite or no --limit)",
        )
    if rule.interval is None:
        passed = rule.holds(value)
        return result(passed, said + ("" if passed else f"; needs {rule.bound}"))
    successes = value * n
    if n < 1 or not 0.0 <= value <= 1.0 or abs(successes - round(successes)) > 1e-6 * n:
        return result(
            False,
            f"{said}: {rule.metric} is not a share of passing samples, so it has no "
            "binomial interval; take `interval` off this rule or bound a pass/fail metric",
        )
    low, high = proportion_interval(round(successes), n, rule.level, rule.interval)
    end, name = (low, "lower") if rule.min is not None else (high, "upper")
    passed = rule.holds(end)
    evidence.update(
        samples=n,
        successes=round(successes),
        interval=[low, high],
        method=rule.interval,
        confidence=rule.level,
    )
    shown = (
        f"{value:.3f} on {n} samples, {rule.level * 100:g}% {INTERVALS[rule.interval]} "
        f"interval [{low:.3f}, {high:.3f}] (run {run.id[:8]})"
    )
    if passed:
        return result(True, shown)
    though = " though the estimate meets it" if rule.holds(value) else ""
    return result(
        False,
        f"{shown}; the evidence cannot establish {rule.metric} {rule.bound}: the interval's "
        f"{name} end is {end:.3f}{though} (more samples narrow it)",
    )


def _required_environment(registry: Registry, version: AdapterVersion, needed: str) -> RuleResult:
    history = registry.deployments.history(needed)
    found = [d for d in history if d.artifact_digest == version.digest]
    return RuleResult(
        kind="environment",
        rule=f"deployed to {needed} before",
        passed=bool(found),
        evidence={"environment": needed, "deployment_id": found[-1].id if found else None},
        message=f"deployment #{found[-1].seq} of {needed}"
        if found
        else f"never deployed to {needed}; promote it there first (`loraledger promote "
        f"{version.ref} --env {needed}`)",
    )


def _no_regression(
    evidence_of: GateContext, version: AdapterVersion, environment: str, locator: str
) -> RuleResult:
    suite = evidence_of.suite(locator)
    rule = f"no regression on {suite.name} against {environment}"
    # against the version of the same adapter name (its track): other adapters there do
    # other jobs
    deployed = evidence_of.registry.deployments.current(environment, version.name)
    if deployed is None or deployed.artifact_digest == version.digest:
        why = (
            f"{environment} runs no version of {version.name} yet"
            if deployed is None
            else "it is what runs there"
        )
        return RuleResult(
            kind="regression", rule=rule, passed=True, evidence={"deployed": None}, message=why
        )
    old = f"adapter:{deployed.adapter}"
    found = [
        c
        for c in evidence_of.comparisons()
        if c.new_subject == f"adapter:{version.ref}"
        and c.old_subject == old
        and c.suite_name == suite.name
        and c.suite_digest == suite.digest
    ]
    evidence: dict[str, Any] = {"deployed": deployed.adapter, "suite_digest": suite.digest}
    if not found:
        return RuleResult(
            kind="regression", rule=rule, passed=False, evidence=evidence,
            message=f"no paired comparison with {deployed.adapter} on the current suite; run "
            f"`loraledger compare {version.ref} {deployed.adapter} --suite {suite.name}`",
        )  # fmt: skip
    comparison = found[-1]
    evidence["comparison_id"] = comparison.id
    regressed = [f"{r.task} {r.metric}" for r in comparison.results if r.verdict == "regression"]
    return RuleResult(
        kind="regression",
        rule=rule,
        passed=not regressed,
        measured=comparison.verdict,
        evidence=evidence,
        message=f"comparison {comparison.id[:8]}: {comparison.verdict}"
        + (f" ({', '.join(regressed)})" if regressed else ""),
    )


def _approvals(
    registry: Registry, version: AdapterVersion, environment: str, inputs: str, rule: ApprovalRule
) -> RuleResult:
    counted = tally(registry, version, environment, inputs, rule)
    notes = [f"{a.signer}: {why}" for a, why in counted.not_counted]
    if counted.rejections:
        message = "rejected by " + ", ".join(
            f"{a.signer} ({a.comment})" for a in counted.rejections
        )
    else:
        message = f"{len(counted.counted)} of {rule.count} valid approvals" + (
            f" ({', '.join(a.signer for a in counted.counted)})" if counted.counted else ""
        )
    if notes:
        message += "; not counted: " + "; ".join(notes)
    return RuleResult(
        kind="approvals",
        rule=f"{rule.count} approval(s) by distinct {rule.role}s, not the authors",
        passed=len(counted.counted) >= rule.count and not counted.rejections,
        measured=len(counted.counted),
        bound=rule.count,
        evidence={"approval_ids": [a.id for a in counted.counted]},
        message=message,
    )


def _data(registry: Registry, run: TrainingRun | None, rule: DataRule) -> list[RuleResult]:
    if run is None:
        return [
            RuleResult(
                kind="data", rule="training data recorded", passed=False,
                message="the version has no training-run record: its data cannot be judged",
            )
        ]  # fmt: skip
    datasets = [registry.datasets.get(d.ref) for d in run.datasets]
    evidence = {"datasets": {d.ref: d.file_sha256 for d in datasets}}
    results = []
    if rule.licenses is not None:
        allowed = {x.lower() for x in rule.licenses}
        bad = [f"{d.ref} ({d.license})" for d in datasets if d.license.lower() not in allowed]
        results.append(
            RuleResult(
                kind="data",
                rule=f"licenses in {', '.join(rule.licenses)}",
                passed=not bad,
                measured={d.ref: d.license for d in datasets},
                bound=rule.licenses,
                evidence=evidence,
                message="all allowed" if not bad else f"not allowed: {', '.join(bad)}",
            )
        )
    if rule.pii == "none":
        found = {d.ref: {kind: f.count for kind, f in d.pii.items()} for d in datasets if d.pii}
        results.append(
            RuleResult(
                kind="data",
                rule="no PII in training data",
                passed=not found,
                measured=found,
                bound="none",
                evidence=evidence,
                message="no PII findings"
                if not found
                else "PII found: "
                + "; ".join(
                    f"{ref}: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
                    for ref, kinds in found.items()
                ),
            )
        )
    return results


def _provenance(
    registry: Registry, ref: str, run: TrainingRun | None, rule: ProvenanceRule
) -> list[RuleResult]:
    results = []
    if rule.signed:
        try:
            report = registry.adapters.verify(ref)
            results.append(
                RuleResult(
                    kind="provenance", rule="signature and files verify now", passed=True,
                    measured=report.digest, evidence={"signer": report.signer},
                    message=f"verified, signed by {report.signer}",
                )
            )  # fmt: skip
        except LedgerError as error:
            results.append(
                RuleResult(
                    kind="provenance", rule="signature and files verify now", passed=False,
                    message=str(error),
                )
            )  # fmt: skip
    if rule.trained_by_loraledger:
        results.append(
            RuleResult(
                kind="provenance",
                rule="trained by LoRA Ledger (training-run record)",
                passed=run is not None,
                evidence={"training_run": run.id if run else None},
                message=f"training run {run.id}" if run else "registered from elsewhere",
            )
        )
    if rule.clean_code_tree:
        dirty = None if run is None else run.code.dirty
        results.append(
            RuleResult(
                kind="provenance",
                rule="trained from a clean code tree",
                passed=dirty is False,
                measured=None if run is None else run.code.commit,
                evidence={"training_run": run.id if run else None},
                message="no training-run record"
                if run is None
                else (
                    f"commit {str(run.code.commit)[:12]}, clean"
                    if not dirty
                    else f"commit {str(run.code.commit)[:12]} with uncommitted changes "
                    "(--allow-dirty)"
                ),
            )
        )
    return results


# --- the built-in rules, registered in the order a gate check runs them: the hash over
# their evidence (which approvals sign) depends on it, so reordering would make every
# recorded approval stale.


@gate_rule("thresholds", settings=list[Threshold])
def thresholds(context: GateContext, rules: list[Threshold]) -> list[RuleResult]:
    """A bound on one metric of one task of a suite, on the newest current run."""
    return [_threshold(context, rule) for rule in rules]


@gate_rule("data", settings=DataRule)
def data(context: GateContext, rule: DataRule) -> list[RuleResult]:
    """The training data's licenses and PII findings, from the training-run record."""
    return _data(context.registry, context.run, rule)


@gate_rule("provenance", settings=ProvenanceRule)
def provenance(context: GateContext, rule: ProvenanceRule) -> list[RuleResult]:
    """The signature and files verify now; a training-run record; a clean code tree."""
    return _provenance(context.registry, context.ref, context.run, rule)


@gate_rule("requires_environment", settings=str)
def requires_environment(context: GateContext, needed: str) -> list[RuleResult]:
    """The version was deployed to ``needed`` before."""
    return [_required_environment(context.registry, context.version, needed)]


@gate_rule("no_regression_against", settings=str)
def no_regression_against(context: GateContext, environment: str) -> list[RuleResult]:
    """On every threshold suite, the paired verdict against what ``environment`` runs."""
    bounds: list[Threshold] = context.policy.setting("thresholds") or []
    suites = list(dict.fromkeys(rule.suite for rule in bounds))
    return [_no_regression(context, context.version, environment, suite) for suite in suites]


@gate_rule("approvals", settings=ApprovalRule, after_evidence=True)
def approvals(context: GateContext, rule: ApprovalRule) -> list[RuleResult]:
    """N distinct approvals of the version over this evidence, none by an author."""
    return [
        _approvals(
            context.registry, context.version, context.environment, context.inputs_sha256, rule
        )
    ]


__all__ = [
    "approvals",
    "check_gate",
    "data",
    "no_regression_against",
    "provenance",
    "requires_environment",
    "thresholds",
]
