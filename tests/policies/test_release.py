"""Release policy files: the default loads; every mistake names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from loraledger.policies.release import DEFAULT_POLICY, load_policy

from loraledger.errors import InputError, NotFound

GOOD = """\
version: 1
environments:
  staging:
    thresholds:
      - {suite: sanity, task: sanity_mc, metric: acc_norm, min: 0.5}
    data: {licenses: [CC-BY-4.0], pii: none}
    provenance: {signed: true, clean_code_tree: true}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_the_default_policy_loads_and_guards_both_sides_of_safety() -> None:
    loaded = load_policy()
    assert loaded.path == DEFAULT_POLICY and len(loaded.sha256) == 64
    assert set(loaded.policy.environments) == {"staging", "production"}
    tasks = {t.task for t in loaded.environment("staging").thresholds}
    assert {"policy_refusal", "policy_over_refusal", "policy_pii_canary"} <= tasks


def test_a_policy_is_identified_by_its_bytes(tmp_path: Path) -> None:
    first = load_policy(write(tmp_path, GOOD))
    second = load_policy(write(tmp_path, GOOD + "# a comment changes the hash\n"))
    assert first.policy == second.policy and first.sha256 != second.sha256


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (GOOD.replace("version: 1", "version: 2"), ":1: field 'version'", "Input should be 1"),
        (GOOD + "approvers: 3\n", ":8: field 'approvers'", "is not a known setting"),
        (
            GOOD.replace("metric: acc_norm, min: 0.5", "metric: acc_norm, min: high"),
            ":5: field 'environments.staging.thresholds.0.min'",
            "valid number",
        ),
        (
            GOOD.replace("min: 0.5", "min: 0.5, max: 0.9"),
            ":5: field 'environments.staging.thresholds.0'",
            "exactly one of min or max",
        ),
        (
            GOOD.replace("min: 0.5", "min: 0.5, confidence: 0.95"),
            ":5: field 'environments.staging.thresholds.0'",
            "confidence is the level of an interval: add interval: wilson",
        ),
        (
            GOOD.replace("min: 0.5", "min: 0.5, interval: wald"),
            ":5: field 'environments.staging.thresholds.0.interval'",
            "'wilson' or 'clopper-pearson'",
        ),
        (
            GOOD.replace("min: 0.5", "min: 0.5, interval: wilson, confidence: 1.5"),
            ":5: field 'environments.staging.thresholds.0.confidence'",
            "less than 1",
        ),
        (
            GOOD.replace("min: 0.5", "min: 0.5, min_samples: 0"),
            ":5: field 'environments.staging.thresholds.0.min_samples'",
            "greater than or equal to 1",
        ),
        (
            GOOD.replace("suite: sanity", "suite: nope"),
            ":5: field 'environments.staging.thresholds.0.suite'",
            "no suite named 'nope'",
        ),
        (
            GOOD.replace("task: sanity_mc", "task: nope"),
            ":5: field 'environments.staging.thresholds.0.task'",
            "suite 'sanity' has no task 'nope'; it has sanity_mc",
        ),
        (
            GOOD.replace("pii: none", "pii: maybe"),
            ":6: field 'environments.staging.data.pii'",
            "'none' or 'allowed'",
        ),
        (GOOD.replace("staging:", "Staging:"), ":2: field 'environments'", "lowercase letters"),
        ("version: 1\nenvironments: {}\n", ":2: field 'environments'", "at least one environment"),
        ("version: [1\n", ":2:", "invalid YAML"),
        # the second `staging:` would silently drop the first one's approvals rule
        (
            GOOD + "  staging:\n    approvals: {count: 2, role: reviewer}\n",
            ":8:",
            "has the key 'staging' twice (lines 3 and 8); keep one",
        ),
        (
            GOOD.replace("pii: none}", "pii: none, pii: allowed}"),
            ":6:",
            "has the key 'pii' twice",
        ),
        ("version: 1\n" + "x: " + "[" * 200 + "]" * 200 + "\n", ":", "the limit is 64"),
        # an adapter's override is checked like the environment's own rules
        (
            GOOD + "    adapters:\n      fraud-*:\n        thresholds:\n"
            "          - {suite: nope, task: x, metric: acc, min: 0}\n",
            ":11: field 'environments.staging.adapters.fraud-*.thresholds.0.suite'",
            "no suite named 'nope'",
        ),
        (
            GOOD + "    adapters:\n      fraud/x: {approvals: {count: 2}}\n",
            ":8: field 'environments.staging.adapters'",
            "'fraud/x' is not an adapter name or a glob of names",
        ),
        (
            GOOD + "    adapters:\n      fraud-*: {adapters: {x: {}}}\n",
            ":8: field 'environments.staging.adapters'",
            "fraud-*: an adapter's rules cannot have adapters of their own",
        ),
        (
            GOOD + "    adapters:\n      fraud-*: {approvals: {count: 0}}\n",
            ":9: field 'environments.staging.adapters.fraud-*.approvals.count'",
            "greater than or equal to 1",
        ),
        (
            GOOD + "    adapters:\n      fraud-*: {requires_environment: staging}\n",
            ": environment 'staging', adapters 'fraud-*'",
            "requires_environment names 'staging', which is not another environment",
        ),
    ],
)
def test_bad_policies_name_file_line_and_field(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    with pytest.raises(InputError) as raised:
        load_policy(write(tmp_path, text))
    error = str(raised.value)
    assert error.startswith(str(tmp_path / "policy.yaml") + where), error
    assert message in error and "\n" not in error


def test_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="has no environment 'prod'; it has staging"):
        load_policy(write(tmp_path, GOOD)).environment("prod")


OVERRIDES = """\
version: 1
environments:
  staging: {}
  production:
    requires_environment: staging
    approvals: {count: 1, role: reviewer}
    provenance: {signed: true}
    adapters:
      fraud-*: {approvals: {count: 2, role: reviewer}}
      "*-triage": {provenance: {signed: true, trained_by_loraledger: true}}
      fraud-triage: {approvals: {count: 3, role: admin}}
"""


@pytest.mark.parametrize(
    ("adapter", "count", "trained", "approvals_from", "provenance_from"),
    [
        ("support-tone", 1, False, "production", "production"),
        ("fraud-scoring", 2, False, "production.adapters.fraud-*", "production"),
        ("kyc-triage", 1, True, "production", "production.adapters.*-triage"),
        # the globs in the file's order, then the name's own entry last
        ("fraud-triage", 3, True, "production.adapters.fraud-triage",
         "production.adapters.*-triage"),
    ],
)  # fmt: skip
def test_an_adapter_s_rules_are_the_environment_s_with_its_overrides_in_order(
    tmp_path: Path, adapter: str, count: int, trained: bool, approvals_from: str,
    provenance_from: str,
) -> None:  # fmt: skip
    rules = load_policy(write(tmp_path, OVERRIDES)).rules_for("production", adapter)
    assert rules.policy.approvals is not None and rules.policy.approvals.count == count
    assert rules.policy.provenance is not None
    assert rules.policy.provenance.trained_by_loraledger is trained
    assert rules.policy.requires_environment == "staging"  # named by no override: kept
    assert rules.source("approvals") == f"environments.{approvals_from}"
    assert rules.source("provenance") == f"environments.{provenance_from}"
    assert rules.source("requires_environment") == "environments.production"
    assert rules.policy.adapters == {}
