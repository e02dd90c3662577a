"""A Hugging Face style model card (README.md) for an adapter version.

The YAML header carries the metadata the Hub reads -- ``base_model``, ``library_name:
peft``, ``license``, ``datasets``, ``tags`` and ``model-index`` with the evaluation results
(the newest complete run of each suite) -- and the body says, from the registry's records,
what the adapter is, how it was trained, how it scored, where it is deployed and how to
verify it.
"""

from __future__ import annotations

from typing import Any

import yaml
from loraledger.registry import Registry

from .mlbom import newest_runs


def model_card(registry: Registry, ref: str) -> str:
    """The model card of ``ref`` as Markdown with a YAML metadata header."""
    version = registry.adapters.get(ref)
    run = registry.adapters.training_run(version.ref)
    base = registry.base_models.get(run.base_ref) if run is not None else None
    datasets = [registry.datasets.get(use.ref) for use in run.datasets] if run else []
    evaluations = newest_runs(registry, version.ref)
    licence = str(base.origin.get("license", "other")).lower() if base else "other"
    quantized = run is not None and run.quantization.method == "nf4"
    metadata: dict[str, Any] = {
        "base_model": str(base.origin.get("model") or base.ref) if base else None,
        "library_name": "peft",
        "license": licence,
        "datasets": [d.ref for d in datasets],
        "tags": sorted({"lora", "loraledger"} | ({"qlora"} if quantized else set())),
        "pipeline_tag": "text-generation",
        "model-index": [
            {
                "name": version.ref,
                "results": [
                    {
                        "task": {"type": "text-generation"},
                        "dataset": {
                            "name": evaluation.suite_name,
                            "type": f"loraledger-suite/{evaluation.suite_name}",
                            "revision": evaluation.suite_digest,
                        },
                        "metrics": [
                            {
                                "type": metric.metric,
                                "name": f"{metric.task} {metric.metric}",
                                "value": round(metric.value, 4),
                                "verified": False,
                            }
                            for metric in evaluation.metrics
                        ],
                    }
                    for evaluation in evaluations
                ],
            }
        ],
    }
    header = yaml.safe_dump(
        {k: v for k, v in metadata.items() if v is not None}, sort_keys=False, allow_unicode=True
    )
    lines = [
        "---",
        header.rstrip(),
        "---",
        "",
        f"# {version.ref}",
        "",
        f"A {version.peft_type} adapter"
        + (f" for `{metadata['base_model']}`" if base else "")
        + f", registered by {version.created_by} on {version.created_at:%Y-%m-%d} and signed "
        f"by {version.signer} (OpenSSF model-signing; digest `sha256:{version.digest}`).",
        "",
        "## Training",
        "",
    ]
    if run is None:
        lines.append("Registered from elsewhere: the registry holds no training record.")
    else:
        hyper = run.config.get("training", {})
        lines += [
            f"- base: `{run.base_ref}` (`sha256:{run.base_digest[:16]}…`), quantization "
            f"`{run.quantization.model_dump()}`, compute {run.compute_dtype}",
            "- data: "
            + ", ".join(f"`{d.ref}` ({d.record_count} records, {d.license})" for d in datasets),
            f"- code: commit `{run.code.commit}`"
            + (" (uncommitted changes)" if run.code.dirty else ""),
            f"- seed {run.seed}, {run.steps} steps, {run.tokens_seen} tokens, "
            f"{run.wall_seconds:.0f} s on {run.device}; settings: `{hyper}`",
            f"- trained by {run.actor}, finished {run.finished_at:%Y-%m-%d %H:%M} UTC",
        ]
    lines += ["", "## Evaluation", ""]
    if not evaluations:
        lines.append("No complete evaluation run is recorded.")
    for evaluation in evaluations:
        lines.append(
            f"- **{evaluation.suite_name}** (suite `sha256:{evaluation.suite_digest[:16]}…`, "
            f"run `{evaluation.id[:8]}`, {evaluation.finished_at:%Y-%m-%d}): "
            + ", ".join(f"{m.task} {m.metric} {m.value:.3f}" for m in evaluation.metrics)
        )
    mine = registry.deployments.of_version(version.digest)
    lines += ["", "## Releases", ""]
    lines += [
        f"- {d.action} to {d.environment} by {d.created_by} on {d.created_at:%Y-%m-%d %H:%M} "
        f"UTC: {d.reason}"
        for d in mine
    ] or ["Never deployed."]
    lines += [
        "",
        "## Verify",
        "",
        "```",
        f"loraledger adapters verify {version.ref}",
        f"loraledger trace {version.ref}",
        "```",
        "",
    ]
    return "\n".join(lines)


__all__ = ["model_card"]
