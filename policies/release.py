"""Release policies as code: one YAML file per policy, validated, hashed.

A policy names environments and, per environment, the rules a version must meet there::

    version: 1
    description: Northwind Bank support assistant
    environments:
      staging:
        thresholds:                      # on recorded evaluation results (harness suites)
          - {suite: northwind-domain, task: northwind_domain_mc, metric: acc_norm, min: 0.5}
          - {suite: northwind-policy, task: policy_pii_canary, metric: pass, min: 1.0}
        data: {licenses: [CC-BY-4.0, MIT], pii: allowed}
        provenance: {signed: true, trained_by_loraledger: true, clean_code_tree: false}

An environment may override its rules for an adapter name or a glob of names (an
environment runs many adapters, one track per name)::

      production:
        approvals: {count: 1, role: reviewer}
        adapters:
          fraud-*: {approvals: {count: 2, role: reviewer}}     # every fraud-* adapter
          fraud-triage: {thresholds: [...]}                     # this one adapter

The rules a version of NAME meets in an environment (:meth:`ReleasePolicy.rules_for`) are
resolved in this order, each later layer replacing whole rules (keys) of the earlier
ones: the environment's own rules, then every glob matching NAME in the order the file
writes them, then NAME's own entry. A rule no layer names stays the environment's. A
gate check shows which layer each rule came from.

Unknown keys, wrong types, unknown suites and tasks are errors naming the file, line and
field. The sha256 of the file's bytes is recorded with every decision taken under it, so a
changed policy never silently re-judges an old decision.

The policy that judges a release is the registry's (:func:`set_policy` records a version,
signed by an admin; :func:`policy_in_force` reads the newest): approvals and promotions
are judged by it whatever file their caller names, and a gate check under any other file
is a dry run that records nothing (:func:`resolve_policy`).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from loraledger.registry import Registry
from loraledger.registry.models import PolicyVersion
from loraledger.registry.permissions import Action
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from loraledger.errors import InputError, NotFound, PolicyNotInForce
from loraledger.inputs import read_bytes
from loraledger.yamlfile import dotted, line_of, validated_bytes

from .gate_rules import gate_rule_named, load_plugins, registered_gate_rules

DEFAULT_POLICY = Path(__file__).resolve().parent / "release.yaml"
_ENV_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
# an adapter name (registry/refs.py) or a glob of names: * ? and [...] besides
_ADAPTER_PATTERN = re.compile(r"[A-Za-z0-9*?\[][A-Za-z0-9._*?\[\]!-]{0,63}")
_GLOB = re.compile(r"[*?\[]")


class _Strict(BaseModel):
    # a threshold of NaN passes or fails every comparison silently, and -1e999 is -inf
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Threshold(_Strict):
    """A bound on one metric of one task of a suite, read from the newest complete run.

    With ``interval`` (``wilson`` or ``clopper-pearson``) the bound is on what the
    evidence establishes, not on the estimate: a pass/fail metric's two-sided
    ``confidence`` interval (default 0.95) must lie above ``min`` (its lower end) or
    below ``max`` (its upper end). ``min_samples`` asks for at least that many samples."""

    suite: str
    task: str
    metric: str
    min: float | None = None
    max: float | None = None
    interval: Literal["wilson", "clopper-pearson"] | None = None
    confidence: float | None = Field(default=None, gt=0.5, lt=1.0)
    min_samples: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min or max")
        if self.confidence is not None and self.interval is None:
            raise ValueError(
                "confidence is the level of an interval: add interval: wilson or "
                "interval: clopper-pearson"
            )
        return self

    @property
    def level(self) -> float:
        """The interval's confidence level (0.95 unless the policy says)."""
        return self.confidence if self.confidence is not None else 0.95

    @property
    def bound(self) -> str:
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"

    @property
    def label(self) -> str:
        label = f"{self.suite}/{self.task} {self.metric} {self.bound}"
        if self.interval is not None:
            end = "lower" if self.min is not None else "upper"
            label += f" ({end} end of the {self.level * 100:g}% {self.interval} interval)"
        if self.min_samples is not None:
            label += f" on >= {self.min_samples} samples"
        return label

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class DataRule(_Strict):
    """What the training data of a version may be."""

    licenses: list[str] | None = Field(
        default=None, description="allowed SPDX license expressions (any when absent)"
    )
    pii: Literal["none", "allowed"] = Field(
        default="allowed", description="none: no PII finding in any training dataset"
    )


class ProvenanceRule(_Strict):
    signed: bool = Field(default=True, description="the signature and every file verify now")
    trained_by_loraledger: bool = Field(
        default=False, description="a training-run record exists (not an outside adapter)"
    )
    clean_code_tree: bool = Field(
        default=False, description="trained from a committed code tree (not --allow-dirty)"
    )


class ApprovalRule(_Strict):
    """How many distinct people must approve, and in which role (admins may also)."""

    count: int = Field(ge=1)
    role: Literal["reviewer", "admin"] = "reviewer"


class EnvironmentPolicy(_Strict):
    """The rules of one environment. Each key is a registered gate rule
    (:mod:`loraledger.policies.gate_rules`): the built-in ones are the typed fields below;
    a plugin's key is validated against the settings type its rule registered."""

    thresholds: list[Threshold] = Field(default_factory=list)
    data: DataRule | None = None
    provenance: ProvenanceRule | None = None
    requires_environment: str | None = Field(
        default=None, description="the version must have been deployed there before"
    )
    no_regression_against: str | None = Field(
        default=None,
        description="on every threshold suite, the paired verdict against what that "
        "environment runs must not be a regression",
    )
    approvals: ApprovalRule | None = None
    adapters: dict[str, EnvironmentPolicy] = Field(
        default_factory=dict,
        description="rules for an adapter name or a glob of names (fraud-*), each replacing "
        "the environment's rule of the same key for those adapters",
    )

    registered: dict[str, Any] = Field(
        default_factory=dict,
        description="the settings of plugin gate rules, by key (filled from the policy's keys)",
    )

    @model_validator(mode="before")
    @classmethod
    def _registered_rules(cls, data: Any) -> Any:
        """A key that a plugin's gate rule registered is validated by its settings type and
        kept under ``registered``; any other unknown key stays, for pydantic to refuse."""
        if not isinstance(data, dict):
            return data
        if "registered" in data:
            raise ValueError("'registered' is not a policy key; name each gate rule itself")
        checked: dict[str, Any] = {}
        plugins: dict[str, Any] = {}
        for key, value in data.items():
            rule = None if key in cls.model_fields else gate_rule_named(str(key))
            if rule is None:
                checked[key] = value
                continue
            try:
                plugins[key] = rule.validate(value)
            except ValidationError as error:
                first = error.errors()[0]
                where = dotted((key, *first["loc"]))
                raise ValueError(f"{where}: {first['msg']}") from None
        return {**checked, "registered": plugins} if plugins else checked

    @field_validator("adapters")
    @classmethod
    def _adapter_overrides(
        cls, value: dict[str, EnvironmentPolicy]
    ) -> dict[str, EnvironmentPolicy]:
        for pattern, override in value.items():
            if not _ADAPTER_PATTERN.fullmatch(pattern) or ".." in pattern:
                raise ValueError(
                    f"{pattern!r} is not an adapter name or a glob of names (letters, digits, "
                    "'.', '_', '-', and * ? [...])"
                )
            if override.adapters:
                raise ValueError(f"{pattern}: an adapter's rules cannot have adapters of their own")
        return value

    @classmethod
    def policy_keys(cls) -> list[str]:
        """The keys an environment may have: the built-in rules and every registered one
        (what an unknown key's error lists)."""
        load_plugins()
        built_in = [name for name in cls.model_fields if name not in ("registered", "adapters")]
        return [*built_in, *(r.name for r in registered_gate_rules() if r.name not in built_in)]

    def setting(self, name: str) -> Any:
        """The policy's value for the gate rule ``name`` (None when the key is absent)."""
        if name in type(self).model_fields and name not in ("registered", "adapters"):
            return getattr(self, name)
        return self.registered.get(name)

    def named_rules(self) -> list[str]:
        """The rules (keys) this policy's file names, plugins' included."""
        fixed = self.model_fields_set - {"registered", "adapters"}
        return sorted(fixed | set(self.registered))


@dataclass(frozen=True)
class AdapterRules:
    """The rules a version of ``adapter`` meets in ``environment``, and where each came
    from: ``sources[key]`` is the policy's place of the layer that set it
    (``environments.production`` or ``environments.production.adapters.fraud-*``)."""

    environment: str
    adapter: str
    policy: EnvironmentPolicy
    sources: dict[str, str]

    def source(self, rule: str) -> str:
        return self.sources.get(rule, f"environments.{self.environment}")


class ReleasePolicy(_Strict):
    version: Literal[1]
    description: str = ""
    environments: dict[str, EnvironmentPolicy]

    @field_validator("environments")
    @classmethod
    def _names(cls, value: dict[str, EnvironmentPolicy]) -> dict[str, EnvironmentPolicy]:
        if not value:
            raise ValueError("name at least one environment")
        for name in value:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(
                    f"environment name {name!r}: use lowercase letters, digits and '-'"
                )
        return value

    @model_validator(mode="after")
    def _required_environments_exist(self) -> ReleasePolicy:
        for name, env in self.environments.items():
            for key, needed in (
                ("requires_environment", env.requires_environment),
                ("no_regression_against", env.no_regression_against),
            ):
                if needed is not None and needed not in self.environments:
                    raise ValueError(
                        f"environment {name!r}: {key} names {needed!r}, which is not an "
                        "environment of this policy"
                    )
            if env.requires_environment == name:
                raise ValueError(f"environment {name!r} cannot require itself")
            for pattern, override in env.adapters.items():
                needed = override.requires_environment
                if needed is not None and (needed not in self.environments or needed == name):
                    raise ValueError(
                        f"environment {name!r}, adapters {pattern!r}: requires_environment "
                        f"names {needed!r}, which is not another environment of this policy"
                    )
        return self

    def rules_for(self, environment: str, adapter: str) -> AdapterRules:
        """The rules of ``environment`` for a version of adapter ``adapter``, resolved in
        the module's documented order."""
        own = self.environments[environment]
        where = f"environments.{environment}"
        layers = [
            (f"{where}.adapters.{pattern}", rules)
            for pattern, rules in own.adapters.items()
            if _GLOB.search(pattern) and fnmatch.fnmatchcase(adapter, pattern)
        ]
        if adapter in own.adapters:
            layers.append((f"{where}.adapters.{adapter}", own.adapters[adapter]))
        sources = dict.fromkeys(own.named_rules(), where)
        fields: dict[str, Any] = {}
        registered = dict(own.registered)
        for place, rules in layers:
            for key in rules.named_rules():
                sources[key] = place
                if key in rules.registered:
                    registered[key] = rules.registered[key]
                else:
                    fields[key] = getattr(rules, key)
        resolved = own.model_copy(update={**fields, "registered": registered, "adapters": {}})
        return AdapterRules(environment, adapter, resolved, sources)


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy as validated, with the hash decisions record: a file (``path``), or a
    version of the registry's policy (``path`` "policy vN", ``version`` N)."""

    policy: ReleasePolicy
    path: Path | str
    sha256: str
    version: int | None = None  # the registry's version; None: a file

    @property
    def in_force(self) -> bool:
        """Whether this is a version of the registry's policy (checked against the
        registry by :func:`resolve_policy`, never taken on trust)."""
        return self.version is not None

    def environment(self, name: str) -> EnvironmentPolicy:
        try:
            return self.policy.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.policy.environments))
            raise NotFound(
                f"policy {self.path} has no environment {name!r}; it has {known}"
            ) from None

    def rules_for(self, environment: str, adapter: str) -> AdapterRules:
        """The rules of ``environment`` for a version of adapter ``adapter`` (its own
        and its adapters' overrides: :meth:`ReleasePolicy.rules_for`)."""
        self.environment(environment)  # a missing one is named
        return self.policy.rules_for(environment, adapter)


def load_policy(path: Path | None = None) -> LoadedPolicy:
    """Read and check a release policy file (the project's example when ``path`` is
    None: the demo's Northwind Bank policy)."""
    path = path or DEFAULT_POLICY
    policy, digest = _validated(read_bytes(path, what="release policy"), path)
    return LoadedPolicy(policy=policy, path=path.resolve(), sha256=digest)


def policy_of(record: PolicyVersion) -> LoadedPolicy:
    """A version of the registry's policy, read as a policy."""
    policy, digest = _validated_record(record.text, record.ref)
    return LoadedPolicy(policy=policy, path=record.ref, sha256=digest, version=record.version)


@functools.lru_cache(maxsize=16)
def _validated_record(text: str, ref: str) -> tuple[ReleasePolicy, str]:
    """A version's text validated once per process: a promotion resolves the policy in
    force, then its gate check resolves it again (the record itself is read and checked
    against its signature each time; only the parse is kept, and the model is frozen)."""
    return _validated(text.encode("utf-8"), ref)


def policy_in_force(registry: Registry, at: datetime | None = None) -> LoadedPolicy | None:
    """The registry's policy in force now (or at ``at``); None when none was set."""
    record = registry.policies.in_force(at)
    return policy_of(record) if record is not None else None


def set_policy(registry: Registry, path: Path, *, reason: str, actor: str | None) -> PolicyVersion:
    """Make the policy file at ``path`` the registry's policy in force (an admin's act,
    signed and audited): validated first, stored as its text."""
    key = registry.act_as(actor, Action.POLICY_SET)
    raw = read_bytes(path, what="release policy")
    _validated(raw, path)
    return registry.policies.set(raw.decode("utf-8"), reason=reason, key=key)


def resolve_policy(
    registry: Registry, policy: LoadedPolicy | Path | None, *, deciding: bool
) -> LoadedPolicy:
    """The policy a command judges by: the registry's in force when ``policy`` is None or
    is that same policy (by sha256). Any other policy is refused for a decision
    (``deciding``: an approval, a promotion) and is a dry run otherwise (a gate check that
    records nothing: the result's ``in_force`` is False)."""
    in_force = policy_in_force(registry)
    if policy is None:
        if in_force is None:
            raise PolicyNotInForce(_none_in_force(deciding))
        return in_force
    given = policy if isinstance(policy, LoadedPolicy) else load_policy(policy)
    if in_force is not None and given.sha256 == in_force.sha256:
        return in_force  # the registry's text, whatever object the caller passed
    if deciding:
        if in_force is None:
            raise PolicyNotInForce(_none_in_force(deciding))
        raise PolicyNotInForce(
            f"{given.path} is not the registry's policy in force ({in_force.path}, sha256 "
            f"{in_force.sha256[:16]}…); approvals and promotions are judged by it -- leave "
            "--policy out, or have an admin make this file the policy: `loraledger policy "
            "set FILE --reason TEXT`"
        )
    return replace(given, version=None)  # a dry run, however the object was made


def _none_in_force(deciding: bool) -> str:
    return (
        "the registry has no release policy in force; an admin sets one with `loraledger "
        "policy set FILE --reason TEXT` (the project's example: policies/release.yaml)"
        + ("" if deciding else ", or pass --policy FILE for a dry run that records nothing")
    )


def _validated(raw: bytes, where: Path | str) -> tuple[ReleasePolicy, str]:
    """A policy's bytes validated (keys, types, suites and their tasks), and their sha256."""
    from loraledger.harness.suites import find_suite

    policy, digest, text = validated_bytes(raw, ReleasePolicy, what="release policy", path=where)
    layers: list[tuple[tuple[str, ...], EnvironmentPolicy]] = []
    for env_name, env in policy.environments.items():
        layers.append((("environments", env_name), env))
        layers += [
            (("environments", env_name, "adapters", pattern), rules)
            for pattern, rules in env.adapters.items()
        ]
    for place, rules_of in layers:
        for index, rule in enumerate(rules_of.thresholds):
            loc: tuple[int | str, ...] = (*place, "thresholds", index)
            try:
                suite = find_suite(rule.suite)
            except (NotFound, InputError) as error:
                raise InputError(
                    str(error),
                    path=where,
                    line=line_of(text, (*loc, "suite")),
                    field=_f(loc, "suite"),
                ) from None
            if rule.task not in suite.task_names:
                raise InputError(
                    f"suite {suite.name!r} has no task {rule.task!r}; it has "
                    f"{', '.join(suite.task_names)}",
                    path=where,
                    line=line_of(text, (*loc, "task")),
                    field=_f(loc, "task"),
                )
    return policy, digest


def _f(loc: tuple[int | str, ...], last: str) -> str:
    return ".".join(str(p) for p in (*loc, last))


__all__ = [
    "DEFAULT_POLICY",
    "AdapterRules",
    "ApprovalRule",
    "DataRule",
    "EnvironmentPolicy",
    "LoadedPolicy",
    "ProvenanceRule",
    "ReleasePolicy",
    "Threshold",
    "load_policy",
]
