"""Gate rules as registered extension points: each key of an environment's policy
(``thresholds``, ``data``, ``provenance``, ...) names a :class:`GateRule` registered with
:func:`gate_rule` (in the manner of peft's ``register_peft_method``).

A rule receives the :class:`GateContext` of one gate check (the version, its training run,
the environment's policy and cached, verified readers of the evidence) and its own
setting from the policy, validated against the settings type it registered, and returns
one :class:`RuleResult` per thing it judged. Rules run in registration order; those
registered ``after_evidence`` (the approvals) run last and see the hash over every other
rule's evidence, which approvals sign.

The built-in rules are registered the same way, in :mod:`loraledger.policies.gates`. A
team's own rule lives in its own package, which declares the module in the entry-point
group ``loraledger.gate_rules``; its key is then valid in a policy file, and an unknown
key is an error listing the registered ones (docs/governance.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Protocol

from loraledger.harness.suites import Suite, find_suite
from loraledger.registry import Registry
from loraledger.registry.models import AdapterVersion, Comparison, EvalRun, RuleResult, TrainingRun
from pydantic import TypeAdapter

from loraledger.errors import InputError

PLUGINS_GROUP = "loraledger.gate_rules"


class EnvironmentRules(Protocol):
    """An environment's policy, as rules read it (release.EnvironmentPolicy)."""

    def setting(self, name: str) -> Any: ...


@dataclass
class GateContext:
    """What the rules of one gate check read: each suite loaded and hashed once, each
    suite's newest current run read and verified once, the comparisons read once."""

    registry: Registry
    version: AdapterVersion
    run: TrainingRun | None
    environment: str
    policy: EnvironmentRules  # the environment's EnvironmentPolicy
    inputs_sha256: str = ""  # set before the rules that run after the evidence
    _suites: dict[str, Suite] = field(default_factory=dict)
    _runs: dict[str, tuple[list[EvalRun], EvalRun | None]] = field(default_factory=dict)
    _comparisons: list[Comparison] | None = None

    @property
    def ref(self) -> str:
        return self.version.ref

    def suite(self, locator: str) -> Suite:
        if locator not in self._suites:
            self._suites[locator] = find_suite(locator)
        return self._suites[locator]

    def runs(self, locator: str) -> tuple[list[EvalRun], EvalRun | None]:
        """Complete runs of the version on the suite, and the newest one of the suite's
        current digest (verified against its audit event), if any."""
        if locator not in self._runs:
            suite = self.suite(locator)
            runs = self.registry.evaluations.list(self.ref, suite.name, status="complete")
            current = [r for r in runs if r.suite_digest == suite.digest]
            newest = self.registry.evaluations.get(current[-1].id) if current else None
            self._runs[locator] = (runs, newest)
        return self._runs[locator]

    def comparisons(self) -> list[Comparison]:
        if self._comparisons is None:
            self._comparisons = self.registry.evaluations.comparisons(self.ref)
        return self._comparisons


class GateRule(Protocol):
    """Judges one key of an environment's policy; returns what it judged, rule by rule."""

    def __call__(self, context: GateContext, setting: Any, /) -> list[RuleResult]: ...


@dataclass(frozen=True)
class RegisteredRule:
    name: str
    judge: GateRule
    settings: Any  # the type the policy's value is validated as
    after_evidence: bool

    def validate(self, value: Any) -> Any:
        return TypeAdapter(self.settings).validate_python(value)


_RULES: dict[str, RegisteredRule] = {}


def gate_rule(
    name: str, *, settings: Any, after_evidence: bool = False
) -> Callable[[GateRule], GateRule]:
    """Register the decorated function as the gate rule of policy key ``name``, its
    value validated as ``settings`` (a pydantic model or any type pydantic knows)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"gate rule name {name!r}: use lower-case letters, digits and _")

    def register(judge: GateRule) -> GateRule:
        taken = _RULES.get(name)
        if taken is not None and taken.judge is not judge:
            raise ValueError(f"gate rule {name!r} is already registered; choose another name")
        _RULES[name] = RegisteredRule(name, judge, settings, after_evidence)
        return judge

    return register


@cache
def load_plugins() -> tuple[str, ...]:
    """Import every module the installed packages declare in ``loraledger.gate_rules``
    (once per process), so the rules they register can be named in a policy."""
    loaded = []
    for entry in entry_points(group=PLUGINS_GROUP):
        try:
            import_module(entry.value)
        except Exception as exc:  # a plugin's own code may raise anything
            raise InputError(
                f"the gate-rule plugin {entry.name!r} ({entry.value}) failed to import: "
                f"{type(exc).__name__}: {exc}; fix or uninstall it"
            ) from exc
        loaded.append(entry.value)
    return tuple(loaded)


def registered_gate_rules() -> list[RegisteredRule]:
    """Every registered rule, in the order gate checks run them."""
    return list(_RULES.values())


def gate_rule_named(name: str) -> RegisteredRule | None:
    load_plugins()
    return _RULES.get(name)


__all__ = [
    "PLUGINS_GROUP",
    "EnvironmentRules",
    "GateContext",
    "GateRule",
    "RegisteredRule",
    "gate_rule",
    "gate_rule_named",
    "load_plugins",
    "registered_gate_rules",
]
