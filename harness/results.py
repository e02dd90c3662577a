"""lm-eval's results, as LoRA Ledger records them: each task's metrics (with stderr and
direction), each sample with what the model saw and answered, its score and the reason
for it (the suite's scoring rule for generated answers, the choice made against the
right one for multiple choice), and a hash of each task's config as lm-eval ran it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from loraledger.registry.models import (
    EvalSample,
    TaskMetric,
)

from .scoring import judge
from .suites import Suite


def convert_results(
    results: dict[str, Any], suite: Suite
) -> tuple[tuple[TaskMetric, ...], tuple[EvalSample, ...], dict[str, str]]:
    """lm-eval's results dict -> metrics, samples and task config hashes."""
    higher = results.get("higher_is_better", {})
    counts = results.get("n-samples", {})
    metrics: list[TaskMetric] = []
    for task in suite.task_names:
        values = results["results"].get(task, {})
        for key, value in values.items():
            if "," not in key or "_stderr," in key or not isinstance(value, int | float):
                continue
            metric, filter_name = key.split(",", 1)
            stderr = values.get(f"{metric}_stderr,{filter_name}")
            metrics.append(
                TaskMetric(
                    task=task,
                    metric=metric,
                    filter=filter_name,
                    value=float(value),
                    stderr=float(stderr) if isinstance(stderr, int | float) else None,
                    higher_is_better=bool(higher.get(task, {}).get(metric, True)),
                    sample_count=int(counts.get(task, {}).get("effective", 0)),
                )
            )
    samples = tuple(
        _sample(task, raw) for task in suite.task_names for raw in results["samples"].get(task, [])
    )
    hashes = {}
    for task in suite.task_names:
        config = dict(results.get("configs", {}).get(task, {}))
        spec = next(t for t in suite.tasks if t.name == task)
        config["dataset_kwargs"] = {
            **(config.get("dataset_kwargs") or {}),
            "data_files": spec.data_files,
        }
        hashes[task] = hashlib.sha256(
            json.dumps(config, sort_keys=True, default=str).encode()
        ).hexdigest()
    return tuple(metrics), samples, hashes


def _sample(task: str, raw: dict[str, Any]) -> EvalSample:
    doc = raw.get("doc") or {}
    names = raw.get("metrics") or []
    values = {n: float(raw[n]) for n in names if isinstance(raw.get(n), int | float)}
    arguments = raw.get("arguments") or [[""]]
    prompt = str(arguments[0][0]) if arguments and arguments[0] else ""
    filtered = raw.get("filtered_resps")
    if isinstance(filtered, list) and len(filtered) == 1 and isinstance(filtered[0], str):
        filtered = filtered[0]
    choices = _choices(arguments)
    if isinstance(filtered, str):
        output = filtered
        reason = _reason(doc, filtered, values)
    elif choices and isinstance(filtered, list):
        output, reason = _choice_reason(choices, filtered, raw.get("target"))
    else:
        output = json.dumps(filtered, default=str)
        reason = _metrics_text(values)
    passed = next(
        (values[m] == 1.0 for m in ("pass", "acc", "all_facts", "exact_match") if m in values),
        None,
    )
    key = doc.get("id") if isinstance(doc, dict) else None
    category = doc.get("category") if isinstance(doc, dict) else None
    return EvalSample(
        task=task,
        doc_id=int(raw["doc_id"]),
        filter=str(raw.get("filter", "none")),
        sample_key=str(key) if key is not None else str(raw.get("doc_hash", raw["doc_id"])),
        doc_hash=str(raw.get("doc_hash", "")),
        prompt_hash=str(raw.get("prompt_hash", "")),
        input=prompt,
        output=output,
        target=str(raw.get("target", "")),
        metrics=values,
        passed=passed,
        reason=reason,
        category=str(category) if category not in (None, "") else None,
    )


def _choices(arguments: list[Any]) -> list[str]:
    """The continuations of a multiple-choice sample's requests (none otherwise)."""
    if len(arguments) > 1 and all(len(a) == 2 for a in arguments):
        return [str(a[1]) for a in arguments]
    return []


def _choice_reason(choices: list[str], filtered: list[Any], target: Any) -> tuple[str, str]:
    scores = [float(r[0]) if isinstance(r, list | tuple) else float(r) for r in filtered]
    best = max(range(len(scores)), key=scores.__getitem__)
    chosen = choices[best]
    answer = int(target) if isinstance(target, int) or str(target).isdigit() else None
    if answer is None or not 0 <= answer < len(choices):
        return chosen, f"chose {chosen.strip()!r} (log-likelihood {scores[best]:.2f})"
    if answer == best:
        return chosen, f"chose the answer {chosen.strip()!r} (log-likelihood {scores[best]:.2f})"
    return chosen, (
        f"chose {chosen.strip()!r} ({scores[best]:.2f}) over the answer "
        f"{choices[answer].strip()!r} ({scores[answer]:.2f})"
    )


def _reason(doc: Any, answer: str, values: dict[str, float]) -> str:
    if isinstance(doc, dict) and ("rule" in doc or "facts" in doc):
        try:
            return judge(doc, answer).reason
        except ValueError as exc:
            return f"unscored: {exc}"
    return _metrics_text(values)


def _metrics_text(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(values.items())) or "no per-sample metric"


__all__ = ["convert_results"]
