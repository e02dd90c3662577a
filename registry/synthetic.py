"""Generated PEFT LoRA adapter directories, for the demo, tests and benchmarks.

The directory has exactly the shape ``peft``'s ``save_pretrained`` writes for a LoRA
adapter on a Llama-style model (``adapter_config.json`` + ``adapter_model.safetensors``
with ``lora_A``/``lora_B`` tensors per target module and layer); only the numbers are
random. Real trained adapters come from the trainer.
"""

from __future__ import annotations

import json
from pathlib import Path

DEMO_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def write_lora_adapter(
    directory: Path,
    *,
    base_model: str = "HuggingFaceTB/SmolLM2-135M-Instruct",
    hidden: int = 576,
    layers: int = 30,
    r: int = 8,
    targets: tuple[str, ...] = DEMO_TARGETS,
    seed: int = 0,
    target_bytes: int | None = None,
    scale: float = 1.0,
    out_features: dict[str, int] | None = None,
) -> Path:
    """Write a LoRA adapter directory and return it.

    ``target_bytes`` grows the layer count until the weights file reaches about that size
    (for benchmarks); otherwise ``layers`` is used as given. ``scale`` multiplies the
    standard normal weights (small ones nudge a real model's answers rather than wreck
    them); ``out_features`` gives a module's output width where it is not ``hidden`` (a
    grouped-query model's ``k_proj``).
    """
    import numpy as np
    from safetensors.numpy import save_file

    if target_bytes is not None:
        per_layer = len(targets) * 2 * r * hidden * 4
        layers = max(1, target_bytes // per_layer)
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for layer in range(layers):
        for module in targets:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            out = (out_features or {}).get(module, hidden)
            a = rng.standard_normal((r, hidden), np.float32) * np.float32(scale)
            b = rng.standard_normal((out, r), np.float32) * np.float32(scale)
            tensors[f"{prefix}.lora_A.weight"] = a
            tensors[f"{prefix}.lora_B.weight"] = b
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": r,
        "lora_alpha": 2 * r,
        "lora_dropout": 0.05,
        "target_modules": list(targets),
        "bias": "none",
        "inference_mode": True,
    }
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (directory / "README.md").write_text(
        f"# Generated LoRA adapter\n\nRandom weights (seed {seed}) for {base_model}.\n"
    )
    return directory
