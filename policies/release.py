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

Unknown keys, wrong types, unknown suites and tasks are errors naming the file, line and
field. The sha256 of the file's bytes is recorded with every decision taken under it, so a
changed policy never silently re-judges an old decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from loraledger.errors import InputError, NotFound
from loraledger.yamlfile import dotted, line_of, load_validated

from .gate_rules import gate_rule_named, load_plugins, registered_gate_rules

DEFAULT_POLICY = Path(__file__).resolve().parent / "release.yaml"
_ENV_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")


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

    @classmethod
    def policy_keys(cls) -> list[str]:
        """The keys an environment may have: the built-in rules and every registered one
        (what an unknown key's error lists)."""
        load_plugins()
        built_in = [name for name in cls.model_fields if name != "registered"]
        return [*built_in, *(r.name for r in registered_gate_rules() if r.name not in built_in)]

    def setting(self, name: str) -> Any:
        """The policy's value for the gate rule ``name`` (None when the key is absent)."""
        if name in type(self).model_fields and name != "registered":
            return getattr(self, name)
        return self.registered.get(name)


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
        return self


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy file as validated, with the hash decisions record."""

    policy: ReleasePolicy
    path: Path
    sha256: str

    def environment(self, name: str) -> EnvironmentPolicy:
        try:
            return self.policy.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.policy.environments))
            raise NotFound(
                f"policy {self.path} has no environment {name!r}; it has {known}"
            ) from None


def load_policy(path: Path | None = None) -> LoadedPolicy:
    """Read and check a release policy (the project's default when ``path`` is None)."""
    from loraledger.harness.suites import find_suite

    path = path or DEFAULT_POLICY
    policy, digest, text = load_validated(path, ReleasePolicy, what="release policy")
    for env_name, env in policy.environments.items():
        for index, rule in enumerate(env.thresholds):
            loc: tuple[int | str, ...] = ("environments", env_name, "thresholds", index)
            try:
                suite = find_suite(rule.suite)
            except (NotFound, InputError) as error:
                raise InputError(
                    str(error),
                    path=path,
                    line=line_of(text, (*loc, "suite")),
                    field=_f(loc, "suite"),
                ) from None
            if rule.task not in suite.task_names:
                raise InputError(
                    f"suite {suite.name!r} has no task {rule.task!r}; it has "
                    f"{', '.join(suite.task_names)}",
                    path=path,
                    line=line_of(text, (*loc, "task")),
                    field=_f(loc, "task"),
                )
    return LoadedPolicy(policy=policy, path=path.resolve(), sha256=digest)


def _f(loc: tuple[int | str, ...], last: str) -> str:
    return ".".join(str(p) for p in (*loc, last))


__all__ = [
    "DEFAULT_POLICY",
    "ApprovalRule",
    "DataRule",
    "EnvironmentPolicy",
    "LoadedPolicy",
    "ProvenanceRule",
    "ReleasePolicy",
    "Threshold",
    "load_policy",
]
