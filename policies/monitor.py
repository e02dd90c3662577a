"""Post-deployment monitoring: re-run an environment's policy suites on what it runs and
compare with the results its promotion was based on.

The baseline is the evidence of the gate check that promoted the deployed version: for
every threshold on a *policy* suite, the evaluation run that check read. ``monitor`` runs
each such suite again on the deployed version (same settings and seed), pairs the new
run with the baseline run (:func:`compare_runs`: McNemar / permutation / bootstrap), and
records the outcome: ``monitor.ok``, or ``monitor.alert`` when any task regressed.
"""

from __future__ import annotations

from dataclasses import dataclass

from loraledger.harness.compare import compare_runs
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.harness.suites import find_suite
from loraledger.registry import Registry
from loraledger.registry.models import Comparison, Deployment, GateCheck
from loraledger.registry.permissions import Action

from loraledger.errors import Conflict, NothingDeployed


@dataclass(frozen=True)
class MonitorReport:
    environment: str
    deployment: Deployment
    gate_check_id: str
    comparisons: tuple[Comparison, ...]

    @property
    def alert(self) -> bool:
        return any(c.verdict == "regression" for c in self.comparisons)


def monitor(
    registry: Registry, environment: str, *, actor: str | None, name: str | None = None
) -> MonitorReport:
    """Re-run the policy suites of the version ``environment`` runs of adapter ``name``
    (None: of the one adapter it runs) and compare with its promotion's."""
    registry.act_as(actor, Action.MONITOR)
    deployed = registry.deployments.current(environment, name)
    if deployed is None:
        runs = f"no version of {name}" if name else "nothing"
        raise NothingDeployed(f"{environment} runs {runs}; there is nothing to monitor")
    check = _promotion_check(registry, environment, deployed)
    comparisons = []
    for run_id, locator in _policy_baselines(check):
        baseline = registry.evaluations.get(run_id)
        suite = find_suite(locator)
        options = EvalOptions(
            batch_size=int(baseline.settings.get("batch_size") or 8),
            limit=baseline.settings.get("limit"),
            seed=baseline.seed,
            compute_dtype=baseline.compute_dtype,  # compare_runs needs the same numerics
        )
        (again,) = evaluate(registry, [deployed.adapter], suite, actor=actor, options=options)
        comparisons.append(compare_runs(registry, again, baseline, suite, actor=actor))
    report = MonitorReport(environment, deployed, check.id, tuple(comparisons))
    record(registry, report, actor=actor)
    return report


def record(registry: Registry, report: MonitorReport, *, actor: str | None) -> None:
    """The outcome as an audit event: ``monitor.alert`` when a task regressed."""
    key = registry.act_as(actor, Action.MONITOR)
    regressed = {
        c.suite_name: [f"{r.task} {r.metric}" for r in c.results if r.verdict == "regression"]
        for c in report.comparisons
    }
    with registry.change(key, Action.MONITOR) as change:
        change.record(
            "monitor.alert" if report.alert else "monitor.ok",
            f"env:{report.environment}",
            {
                "adapter": report.deployment.adapter,
                "artifact_digest": report.deployment.artifact_digest,
                "deployment_id": report.deployment.id,
                "baseline_gate_check": report.gate_check_id,
                "comparisons": {c.suite_name: c.id for c in report.comparisons},
                "regressed": {k: v for k, v in regressed.items() if v},
            },
        )


def _promotion_check(registry: Registry, environment: str, deployed: Deployment) -> GateCheck:
    promotions = [
        d
        for d in registry.deployments.history(environment)
        if d.artifact_digest == deployed.artifact_digest and d.gate_check_id
    ]
    if not promotions or promotions[-1].gate_check_id is None:
        raise Conflict(
            f"{deployed.adapter} in {environment} has no recorded promotion gate check to "
            "compare with"
        )
    return registry.gate_checks.get(promotions[-1].gate_check_id)


def _policy_baselines(check: GateCheck) -> list[tuple[str, str]]:
    """(run id, suite locator) of every policy-suite result the gate check read, once."""
    runs: list[tuple[str, str]] = []
    for rule in check.rules:
        evidence = rule.evidence
        if rule.kind != "threshold" or not evidence.get("run_id"):
            continue
        locator = str(evidence.get("locator") or evidence["suite"])
        entry = (str(evidence["run_id"]), locator)
        if entry not in runs and find_suite(locator).kind == "policy":
            runs.append(entry)
    if not runs:
        raise Conflict(
            f"gate check {check.id[:8]} read no policy-suite results; the environment's policy "
            "has no thresholds on a policy suite to monitor"
        )
    return runs


__all__ = ["MonitorReport", "monitor", "record"]
