"""Monitoring re-runs the deployed version's policy suites against its promotion's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.policies.deployments import promote
from loraledger.policies.monitor import monitor, record
from loraledger.registry import Registry

from loraledger.errors import Conflict
from tests.conftest import ENGINEER, REVIEWER
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)
from tests.policies.helpers import deploy, use_policy


def test_monitor_compares_with_the_promotion_results(
    eval_registry: Registry,
    tmp_path: Path,
) -> None:
    with pytest.raises(Conflict, match="watched runs nothing"):
        monitor(eval_registry, "watched", actor=ENGINEER)
    (baseline,) = evaluate(
        eval_registry, [PLAIN[0]], "northwind-policy", actor=ENGINEER, options=EvalOptions(limit=2)
    )
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nenvironments:\n  watched:\n    thresholds:\n"
        "      - {suite: northwind-policy, task: policy_pii_canary, metric: pass, min: 0}\n"
        "      - {suite: northwind-policy, task: policy_refusal, metric: pass, min: 0}\n"
    )
    promote(
        eval_registry, PLAIN[0], "watched", actor=REVIEWER, policy=use_policy(eval_registry, policy)
    )
    report = monitor(eval_registry, "watched", actor=ENGINEER)
    (comparison,) = report.comparisons  # one policy suite, compared once
    assert comparison.old_run == baseline.id and comparison.new_run != baseline.id
    assert comparison.verdict == "no significant change" and not report.alert
    assert all(r.n == 2 for r in comparison.results)  # same settings as the baseline
    event = eval_registry.audit_events(action="monitor.ok", newest_first=True, limit=1)[0]
    assert event.subject == "env:watched" and event.payload["comparisons"] == {
        "northwind-policy": comparison.id
    }
    # a regression found by a later run is recorded as an alert
    regressed = comparison.model_copy(
        update={
            "verdict": "regression",
            "results": tuple(
                r.model_copy(update={"verdict": "regression"}) for r in comparison.results[:1]
            ),
        }
    )
    alert = dataclasses.replace(report, comparisons=(regressed,))
    assert alert.alert
    record(eval_registry, alert, actor=ENGINEER)
    event = eval_registry.audit_events(action="monitor.alert", newest_first=True, limit=1)[0]
    assert event.payload["regressed"] == {
        "northwind-policy": [f"{comparison.results[0].task} {comparison.results[0].metric}"]
    }


def test_a_deployment_without_a_promotion_check_cannot_be_monitored(
    eval_registry: Registry,
) -> None:
    deploy(eval_registry, "manual", PLAIN[1])
    with pytest.raises(Conflict, match="has no recorded promotion gate check"):
        monitor(eval_registry, "manual", actor=ENGINEER)
