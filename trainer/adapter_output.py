"""Writing the trained adapter directory deterministically: no ids, times or paths in any
file, so the same run on the same CPU gives byte-identical files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraledger.registry.models import (
    BaseModelVersion,
    DatasetVersion,
)

from .config import TrainingConfig

if TYPE_CHECKING:
    pass


def save_adapter(
    model: Any,
    directory: Path,
    base: BaseModelVersion,
    datasets: list[DatasetVersion],
    config: TrainingConfig,
    config_sha: str,
) -> None:
    """Write the adapter deterministically: no ids, times or paths in any file."""
    import shutil

    if directory.exists():
        shutil.rmtree(directory)
    model.save_pretrained(directory)
    config_path = directory / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    adapter_config["base_model_name_or_path"] = base.ref
    if isinstance(adapter_config.get("target_modules"), list):
        adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
    config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")
    data = "\n".join(
        f"- {d.ref}: {d.record_count} records, merkle root {d.merkle_root}" for d in datasets
    )
    (directory / "README.md").write_text(
        f"# {config.adapter_name}\n\n"
        f"LoRA adapter trained by LoRA Ledger.\n\n"
        f"- base: {base.ref} (sha256 {base.digest})\n"
        f"- quantization: {config.quantization}"
        f"{' + double quant' if config.quantization != 'none' and config.double_quant else ''}\n"
        f"- config sha256: {config_sha}\n- seed: {config.seed}\n\n## Data\n\n{data}\n\n"
        "The full training-run record is in the registry: "
        f"`loraledger adapters lineage {config.adapter_name}@vN`.\n"
    )


__all__ = ["save_adapter"]
