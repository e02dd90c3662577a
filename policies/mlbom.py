"""A CycloneDX 1.6 ML-BOM for an adapter version.

The adapter is the BOM's subject (``metadata.component``, type ``machine-learning-model``)
with its files as sub-components (sha256 each); the base model and the training datasets
(type ``data``, with license, file sha256, Merkle root and PII findings) and the software
the training ran with (PyPI package URLs) are components it depends on. The model card
(``modelCard``: approach, task, architecture, datasets, performance metrics of the newest
complete evaluation run of each suite, considerations from the data and the gate) is added
to the JSON that ``cyclonedx-python-lib`` writes -- the library cannot write that section
yet (upstream CycloneDX/cyclonedx-python-lib#912, #913) -- and the whole document is then
validated against the CycloneDX 1.6 JSON schema with the library's own validator.
"""

from __future__ import annotations

import json
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from loraledger.registry import Registry
from loraledger.registry.models import AdapterVersion, EvalRun, TrainingRun
from packageurl import PackageURL

import loraledger
from loraledger.errors import VerificationError

Z_95 = 1.959963984540054  # two-sided 95% normal quantile, for intervals from a stderr


def ml_bom(registry: Registry, ref: str) -> dict[str, Any]:
    """The ML-BOM of ``ref`` as a validated CycloneDX 1.6 JSON document."""
    version = registry.adapters.get(ref)
    run = registry.adapters.training_run(version.ref)
    bom = Bom()
    adapter = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=version.name,
        version=f"v{version.version}",
        bom_ref=f"adapter:{version.ref}",
        description=f"{version.peft_type} adapter, signed by {version.signer}",
        properties=[
            Property(name="loraledger:artifact_digest", value=version.digest),
            Property(name="loraledger:signer", value=version.signer),
            Property(
                name="loraledger:signer_key_fingerprint", value=version.signer_key_fingerprint
            ),
        ],
    )
    for entry in version.files:
        adapter.components.add(
            Component(
                type=ComponentType.FILE,
                name=entry.path,
                bom_ref=f"file:{version.ref}/{entry.path}",
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=entry.sha256)],
            )
        )
    bom.metadata.component = adapter
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="loraledger", version=loraledger.__version__)
    )
    dependencies: list[Component] = []
    dataset_refs: list[str] = []
    if run is not None:
        base = registry.base_models.get(run.base_ref)
        base_component = Component(
            type=ComponentType.MACHINE_LEARNING_MODEL,
            name=str(base.origin.get("model") or base.name),
            version=f"v{base.version}",
            bom_ref=f"base:{base.ref}",
            description=f"base model {base.ref} ({base.architecture}), frozen and quantized",
            properties=[
                Property(name="loraledger:base_digest", value=base.digest),
                Property(
                    name="loraledger:quantization",
                    value=json.dumps(run.quantization.model_dump(mode="json")),
                ),
                Property(name="loraledger:origin", value=json.dumps(base.origin, sort_keys=True)),
            ],
        )
        if base.origin.get("license"):
            base_component.licenses.add(LicenseExpression(str(base.origin["license"])))
        dependencies.append(base_component)
        for use in run.datasets:
            dataset = registry.datasets.get(use.ref)
            component = Component(
                type=ComponentType.DATA,
                name=dataset.name,
                version=f"v{dataset.version}",
                bom_ref=f"dataset:{dataset.ref}",
                description=f"{dataset.record_count} {dataset.format} records from "
                f"{dataset.source}",
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=dataset.file_sha256)],
                properties=[
                    Property(name="loraledger:merkle_root_rfc9162", value=dataset.merkle_root),
                    Property(name="loraledger:records", value=str(dataset.record_count)),
                    *(
                        Property(name=f"loraledger:pii:{kind}", value=str(found.count))
                        for kind, found in sorted(dataset.pii.items())
                    ),
                ],
            )
            component.licenses.add(LicenseExpression(dataset.license))
            dependencies.append(component)
            dataset_refs.append(f"dataset:{dataset.ref}")
        for name, installed in sorted(run.libraries.items()):
            if installed in ("not installed", ""):
                continue
            dependencies.append(
                Component(
                    type=ComponentType.LIBRARY,
                    name=name,
                    version=installed,
                    bom_ref=f"pypi:{name}",
                    purl=PackageURL(type="pypi", name=name, version=installed),
                )
            )
    for component in dependencies:
        bom.components.add(component)
    bom.register_dependency(adapter, dependencies)
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    document["metadata"]["component"]["modelCard"] = _model_card(
        registry, version, run, dataset_refs
    )
    validate_ml_bom(document)
    return document


def _model_card(
    registry: Registry, version: AdapterVersion, run: TrainingRun | None, datasets: list[str]
) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "approach": {"type": "supervised"},
        "task": "text-generation",
        "modelArchitecture": _architecture(version),
    }
    if run is not None:
        parameters["architectureFamily"] = registry.base_models.get(run.base_ref).architecture
        parameters["datasets"] = [{"ref": ref} for ref in datasets]
    metrics = []
    for evaluation in newest_runs(registry, version.ref):
        for metric in evaluation.metrics:
            entry: dict[str, Any] = {
                "type": f"{metric.task}/{metric.metric}",
                "value": f"{metric.value:.4f}",
                "slice": f"{evaluation.suite_name} (sha256:{evaluation.suite_digest[:12]}, "
                f"n={metric.sample_count}, run {evaluation.id[:8]})",
            }
            if metric.stderr:
                entry["confidenceInterval"] = {
                    "lowerBound": f"{metric.value - Z_95 * metric.stderr:.4f}",
                    "upperBound": f"{metric.value + Z_95 * metric.stderr:.4f}",
                }
            metrics.append(entry)
    considerations: dict[str, Any] = {
        "technicalLimitations": [
            "Evaluated only on the suites listed under performanceMetrics; each value is one "
            "seeded run of the exact signed artifact on its recorded base and quantization."
        ],
    }
    if run is not None:
        risks = []
        for use in run.datasets:
            pii = registry.datasets.get(use.ref).pii
            if pii:
                found = ", ".join(f"{k} x{v.count}" for k, v in sorted(pii.items()))
                risks.append(
                    {
                        "name": f"personal data in training data {use.ref}: {found}",
                        "mitigationStrategy": "policy suites test PII leakage (canaries); the "
                        "release policy's data rule decides whether such findings may ship",
                    }
                )
        if risks:
            considerations["ethicalConsiderations"] = risks
    card: dict[str, Any] = {
        "bom-ref": f"model-card:{version.ref}",
        "modelParameters": parameters,
        "considerations": considerations,
    }
    if metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    return card


def newest_runs(registry: Registry, ref: str) -> list[EvalRun]:
    """The newest complete evaluation run of each suite for ``ref``, by suite name."""
    newest: dict[str, str] = {}
    for summary in registry.evaluations.list(ref):
        if summary.status == "complete":
            newest[summary.suite_name] = summary.id  # listed oldest first
    return [registry.evaluations.get(run_id) for _, run_id in sorted(newest.items())]


def _architecture(version: AdapterVersion) -> str:
    config = version.adapter_config
    targets = config.get("target_modules")
    if isinstance(targets, list):
        targets = ",".join(sorted(targets))
    return (
        f"{version.peft_type} r={config.get('r')} alpha={config.get('lora_alpha')} "
        f"on {targets} of {version.base_model_name or config.get('base_model_name_or_path')}"
    )


def validate_ml_bom(document: dict[str, Any]) -> None:
    """Validate against the CycloneDX 1.6 JSON schema; raise naming the first problem."""
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    if error is not None:
        first = str(error).splitlines()[0]
        raise VerificationError(f"not a valid CycloneDX 1.6 document: {first}")


__all__ = ["ml_bom", "newest_runs", "validate_ml_bom"]
