"""How often the refusal judge agrees with people: its accuracy on a labelled set.

The labelled set (``harness/judges/refusal-labels.jsonl``, written by the project:
``scripts/write_judge_labels.py``) holds answers a person labelled ``refused`` or
``answered``, in the styles that trouble judges (refusal then compliance, compliance
behind a disclaimer, off-topic replies, other languages). The judge's verdict on each is
compared with its label, "refused" being the positive class:

* **precision** -- of the answers it calls refusals, the share that are;
* **recall** -- of the refusals, the share it finds;
* **agreement** -- the share of all answers on which it agrees with the label;

each with its Wilson score interval (the set is a sample of the answers a judge meets),
and the agreement by style, so a reviewer sees where the judge is weak. A team checks the
judge on its own labelled answers with ``--labels FILE`` (the same JSONL fields).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraledger.errors import InputError
from loraledger.inputs import lines, loads_json
from loraledger.paths import output_file

from .judging import BUILTIN_JUDGES, RULES, RefusalJudge, answer_digest, build_judge, models_of
from .statistics import proportion_interval

if TYPE_CHECKING:
    from loraledger.registry import Registry

DEFAULT_LABELS = Path(__file__).resolve().parent / "judges" / "refusal-labels.jsonl"
LABELS = ("refused", "answered")


@dataclass(frozen=True)
class Rate:
    """A share of ``of`` with its interval."""

    hits: int
    of: int
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] ({self.hits}/{self.of})"


@dataclass(frozen=True)
class JudgeCheck:
    judge: str
    labels: str
    labels_sha256: str
    confidence: float
    precision: Rate
    recall: Rate
    agreement: Rate
    by_style: dict[str, Rate] = field(default_factory=dict)
    misses: list[dict[str, str]] = field(default_factory=list)
    left_out: int = 0  # labelled answers a judge learned from, not measured on

    def summary(self) -> dict[str, Any]:
        """What a run scored by the judge records of it: which judge, on which labels,
        and how accurate it was there."""

        def rate(r: Rate) -> dict[str, float]:
            return {"value": r.value, "low": r.low, "high": r.high}

        return {
            "judge": self.judge,
            "labels_sha256": self.labels_sha256,
            "confidence": self.confidence,
            "precision": rate(self.precision),
            "recall": rate(self.recall),
            "agreement": rate(self.agreement),
            **({"left_out": self.left_out} if self.left_out else {}),
        }

    def as_dict(self) -> dict[str, Any]:
        def rate(r: Rate) -> dict[str, Any]:
            return {"value": r.value, "low": r.low, "high": r.high, "hits": r.hits, "of": r.of}

        return {
            "judge": self.judge,
            "labels": self.labels,
            "labels_sha256": self.labels_sha256,
            "confidence": self.confidence,
            "precision": rate(self.precision),
            "recall": rate(self.recall),
            "agreement": rate(self.agreement),
            "by_style": {k: rate(v) for k, v in self.by_style.items()},
            "misses": self.misses,
            "left_out": self.left_out,
        }


def read_labels(path: Path) -> list[dict[str, str]]:
    """The labelled answers of ``path``; a bad line is an :class:`InputError` naming it."""
    rows: list[dict[str, str]] = []
    for number, line in lines(path):
        if not line.strip():
            continue
        row = loads_json(line, path=path, line=number)
        if not isinstance(row, dict) or not isinstance(row.get("answer"), str):
            raise InputError("needs an `answer` string", path=path, line=number)
        if row.get("label") not in LABELS:
            raise InputError(
                f"label is {row.get('label')!r}; use one of {', '.join(LABELS)}",
                path=path,
                line=number,
            )
        style = str(row.get("style", "unstated"))
        rows.append({"id": str(row.get("id", number)), "answer": row["answer"],
                     "label": row["label"], "style": style})  # fmt: skip
    if not rows:
        raise InputError("holds no labelled answers", path=path)
    return rows


def check_judge(
    labels: Path = DEFAULT_LABELS,
    confidence: float = 0.95,
    judge: RefusalJudge = RULES,
    *,
    beside: Sequence[RefusalJudge] = (),
) -> JudgeCheck:
    """``judge``'s precision, recall and agreement on ``labels`` (the rules judge unless
    another is given). The answers it -- or any judge it is compared with, ``beside`` --
    learned from are left out, so judges compared are measured on the same unseen rows."""
    every = read_labels(labels)
    learned = judge.learned_from.union(*(other.learned_from for other in beside))
    rows = [row for row in every if answer_digest(row["answer"]) not in learned]
    if not rows:
        raise InputError("holds no answer the judges did not learn from", path=labels)
    tp = fp = tn = fn = 0
    styles: dict[str, list[int]] = {}
    misses: list[dict[str, str]] = []
    verdicts = judge.classify([row["answer"] for row in rows])
    for row, verdict in zip(rows, verdicts, strict=True):
        truth = row["label"] == "refused"
        right = verdict.refused == truth
        tp += verdict.refused and truth
        fp += verdict.refused and not truth
        tn += not verdict.refused and not truth
        fn += not verdict.refused and truth
        tally = styles.setdefault(row["style"], [0, 0])
        tally[0] += right
        tally[1] += 1
        if not right:
            misses.append({"id": row["id"], "style": row["style"], "label": row["label"],
                           "reason": verdict.reason})  # fmt: skip

    def rate(hits: int, of: int) -> Rate:
        if of == 0:
            return Rate(0, 0, float("nan"), 0.0, 1.0)
        low, high = proportion_interval(hits, of, confidence, "wilson")
        return Rate(hits, of, hits / of, low, high)

    return JudgeCheck(
        judge=judge.identity,
        labels=str(labels),
        labels_sha256=hashlib.sha256(labels.read_bytes()).hexdigest(),
        confidence=confidence,
        precision=rate(tp, tp + fp),
        recall=rate(tp, tp + fn),
        agreement=rate(tp + tn, len(rows)),
        by_style={name: rate(*tally) for name, tally in sorted(styles.items())},
        misses=misses,
        left_out=len(every) - len(rows),
    )


def judge_of(name: str) -> dict[str, Any]:
    """The spec of a judge named by ``judge-check --judge``: a built-in judge, or the
    judge a suite (by name or folder) names."""
    if name in BUILTIN_JUDGES:
        return dict(BUILTIN_JUDGES[name])
    from .suites import find_suite

    return find_suite(name).judge


def check_judges(
    names: Sequence[str],
    registry: Callable[[], Registry],
    labels: Path = DEFAULT_LABELS,
    confidence: float = 0.95,
) -> list[JudgeCheck]:
    """Each named judge checked on the same labelled answers (those none learned from);
    ``registry`` is opened only when a judge has a model to find."""
    opened: list[Registry] = []

    def models(ref: str) -> tuple[Path, str]:
        if not opened:
            opened.append(registry())
        return models_of(opened[0])(ref)

    judges = [build_judge(judge_of(name), models) for name in names]
    return [
        check_judge(labels, confidence, judge, beside=[j for j in judges if j is not judge])
        for judge in judges
    ]


def train_judge_head(
    registry: Registry, model: str, labels: Path, out: Path, share: float = 0.6
) -> dict[str, Any]:
    """Train an embedding judge's head on ``share`` of ``labels`` with the registered
    (verified) model ``model``, and write it to ``out``."""
    from .model_judges import train_head, training_rows, write_head

    output_file(out)  # before minutes of work, not after them
    directory, digest = models_of(registry)(model)
    rows = training_rows(read_labels(labels), share)
    sha = hashlib.sha256(labels.read_bytes()).hexdigest()
    head = train_head(model, directory, digest, rows, labels_sha256=sha)
    write_head(head, out)
    return head


def accuracy_line(summary: dict[str, Any]) -> str:
    """A judge's recorded accuracy in one line, for beside a result it scored."""

    def rate(name: str) -> str:
        r = summary[name]
        return f"{name} {r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"

    judge = re.sub(r"sha256:([0-9a-f]{12})[0-9a-f]{52}", r"sha256:\1…", summary["judge"])
    return f"judged by {judge}: {rate('precision')}, {rate('recall')} on its labels"


__all__ = [
    "DEFAULT_LABELS",
    "JudgeCheck",
    "Rate",
    "accuracy_line",
    "check_judge",
    "check_judges",
    "judge_of",
    "read_labels",
    "train_judge_head",
]
