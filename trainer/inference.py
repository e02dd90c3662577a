"""Asking a base model, with or without a registered adapter, a few questions.

The adapter is loaded only through ``Adapters.open_verified`` (signature and bytes checked)
and only on the base it was trained on; the base is re-hashed before it is loaded and
quantized as the adapter's training run recorded, so "before" and "after" answers differ
by the adapter alone. Decoding is greedy, so answers are repeatable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.models import Quantization

from loraledger.errors import UsageError

from .compute_dtype import checkpoint_dtype
from .runtime import default_device, load_base_model


def load_verified(
    registry: Registry, *, adapter: str | None = None, base: str | None = None
) -> tuple[Any, Any]:
    """The base (re-hashed first), quantized as the adapter's training run recorded, with
    the adapter loaded from its verified copy; ready for inference (eval mode)."""

    run = registry.adapters.training_run(adapter) if adapter else None
    base_ref = base or (run.base_ref if run else None)
    if base_ref is None:
        raise UsageError("name the base model with --base (the adapter records none)")
    base_version = registry.base_models.verify(base_ref)
    if adapter:
        registry.adapters.require_base(adapter, base_version)
    quantization = run.quantization if run else Quantization(method="none")
    device = default_device()
    dtype = checkpoint_dtype(Path(base_version.location))  # as plain transformers loads it
    model, tokenizer = load_base_model(
        base_version, quantization.method, quantization.double_quant, dtype, device
    )
    if adapter:
        from peft import PeftModel

        with registry.adapters.open_verified(adapter) as (_, path):
            model = PeftModel.from_pretrained(model, path)
    model.eval()
    return model, tokenizer


def ask(
    registry: Registry,
    questions: list[str],
    *,
    adapter: str | None = None,
    base: str | None = None,
    system: str | None = None,
    max_new_tokens: int = 48,
) -> list[str]:
    """Greedy answers to ``questions`` through the base's chat template."""
    import torch

    model, tokenizer = load_verified(registry, adapter=adapter, base=base)
    device = model.device
    answers = []
    for question in questions:
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": question}
        ]
        ids = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        ids = {k: v.to(device) for k, v in ids.items()}
        with torch.no_grad():
            output = model.generate(
                **ids,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = output[0, ids["input_ids"].shape[1] :]
        answers.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return answers
