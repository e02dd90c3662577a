"""Gate rules are registered implementations of one Protocol: the built-in ones in the
order a check runs them, a plugin's rule named in a policy with no edit to the package
(through the entry-point group, as an installed package declares it), unknown keys and
bad settings refused with the registered names."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from loraledger.policies import gate_rules, gates
from loraledger.policies.gate_rules import (
    GateContext,
    gate_rule,
    load_plugins,
    registered_gate_rules,
)
from loraledger.policies.gates import check_gate
from loraledger.policies.release import load_policy
from loraledger.registry import Registry
from loraledger.registry.models import RuleResult

from loraledger.errors import InputError
from tests.conftest import ENGINEER
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)
from tests.policies.helpers import use_policy

BUILT_IN = [
    "thresholds",
    "data",
    "provenance",
    "requires_environment",
    "no_regression_against",
    "approvals",
]


@gate_rule("max_adapter_bytes", settings=int)
def max_adapter_bytes(context: GateContext, limit: int) -> list[RuleResult]:
    size = context.version.total_bytes
    return [
        RuleResult(
            kind="size",
            rule=f"adapter at most {limit} bytes",
            passed=size <= limit,
            measured=size,
            bound=limit,
            evidence={"digest": context.version.digest},
            message=f"{size} bytes",
        )
    ]


def policy(registry: Registry | None, tmp_path: Path, body: str) -> Path:
    """A policy of staging with ``body``, made ``registry``'s policy in force (None: only
    the file, for tests of reading it)."""
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nenvironments:\n  staging:\n" + textwrap.indent(body, "    "))
    return use_policy(registry, path) if registry is not None else path


def test_the_built_in_rules_are_registered_in_the_order_checks_run_them() -> None:
    names = [rule.name for rule in registered_gate_rules()]
    assert names[: len(BUILT_IN)] == BUILT_IN
    assert [r.name for r in registered_gate_rules() if r.after_evidence] == ["approvals"]
    assert all(callable(getattr(gates, name)) for name in BUILT_IN)


def test_a_registered_rule_judges_a_version(eval_registry: Registry, tmp_path: Path) -> None:
    size = eval_registry.adapters.get(PLAIN[0]).total_bytes
    path = policy(
        eval_registry, tmp_path, f"max_adapter_bytes: {size}\ndata: {{licenses: [CC-BY-4.0]}}\n"
    )
    check = check_gate(eval_registry, PLAIN[0], "staging", actor=ENGINEER, policy=path)
    assert check.passed
    assert [r.kind for r in check.rules] == ["data", "size"]  # built-ins first
    assert check.rules[1].measured == size
    path = policy(eval_registry, tmp_path, f"max_adapter_bytes: {size - 1}\n")
    check = check_gate(eval_registry, PLAIN[0], "staging", actor=ENGINEER, policy=path)
    assert not check.passed and check.rules[0].message == f"{size} bytes"


def test_an_unknown_key_is_refused_at_its_line_listing_the_registered_rules(
    tmp_path: Path,
) -> None:
    with pytest.raises(InputError) as raised:
        load_policy(policy(None, tmp_path, "data: {pii: none}\nmax_adapter_size: 10\n"))
    assert str(raised.value) == (
        f"{tmp_path / 'policy.yaml'}:5: field 'environments.staging.max_adapter_size': is not "
        "a known setting; the known ones here are approvals, data, max_adapter_bytes, "
        "no_regression_against, provenance, requires_environment, thresholds"
    )


def test_registered_is_not_a_policy_key(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="registered"):
        load_policy(policy(None, tmp_path, "registered: {max_adapter_bytes: lots}\n"))


def test_a_plugin_rule_setting_is_validated_by_its_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="max_adapter_bytes: Input should be a valid integer"):
        load_policy(policy(None, tmp_path, "max_adapter_bytes: lots\n"))


def test_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'data' is already registered"):
        gate_rule("data", settings=dict)(lambda context, setting: [])


def test_an_installed_package_registers_its_rule_through_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real distribution on sys.path, as `pip install` lays one out: its metadata
    # declares the module in the group, and loading the plugins imports it.
    (tmp_path / "northwind_rules.py").write_text(
        textwrap.dedent(
            """
            from loraledger.policies.gate_rules import gate_rule
            from loraledger.registry.models import RuleResult

            @gate_rule("ticket_reference", settings=str)
            def ticket_reference(context, ticket):
                return [RuleResult(kind="change", rule="change ticket", passed=True,
                                   evidence={"ticket": ticket}, message=ticket)]
            """
        )
    )
    info = tmp_path / "northwind_rules-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: northwind-rules\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[loraledger.gate_rules]\ntickets = northwind_rules\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(gate_rules, "_RULES", dict(gate_rules._RULES))  # undone afterwards
    load_plugins.cache_clear()
    try:
        loaded = load_policy(policy(None, tmp_path, "ticket_reference: CHG-1042\n"))
        assert "northwind_rules" in load_plugins()
        assert loaded.environment("staging").setting("ticket_reference") == "CHG-1042"
    finally:
        load_plugins.cache_clear()
