"""The runtime that training, inference and evaluation share: where models run (the
device), what the machine is (hardware facts for the training record), and loading a
verified base model and its tokenizer, quantized as asked (with LoRA layers, for training)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraledger.registry.models import (
    BaseModelVersion,
)

from .config import TrainingConfig

if TYPE_CHECKING:
    pass


def default_device() -> str:
    """Where models run: the GPU when there is one, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def hardware() -> dict[str, Any]:
    """The machine's facts for a training record: :func:`machine`, with torch's threads
    and the GPU."""
    import torch

    info = machine()
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine() -> dict[str, Any]:
    """What the machine is, without importing torch: architecture, system, CPU count and
    model, memory."""
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
    }
    for line in read_lines("/proc/cpuinfo"):
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    for line in read_lines("/proc/meminfo"):
        if line.startswith("MemTotal"):
            info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
            break
    return info


def read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def hidden_size(base: BaseModelVersion) -> int:
    config = json.loads((Path(base.location) / "config.json").read_text())
    return int(config.get("hidden_size") or config.get("n_embd") or 1024)


def load_tokenizer(base: BaseModelVersion) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base.location)


def load_base_model(
    base: BaseModelVersion, quantization: str, double_quant: bool, dtype_name: str, device: str
) -> tuple[Any, Any]:
    """The base model (quantized as asked) and its tokenizer, from the verified files."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    dtype = getattr(torch, dtype_name)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if quantization != "none":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quantization,
            bnb_4bit_use_double_quant=double_quant,
            bnb_4bit_compute_dtype=dtype,
        )
        # bitsandbytes quantizes while loading, on the device the weights are placed on
        kwargs["device_map"] = {"": device}
    tokenizer = load_tokenizer(base)
    model = AutoModelForCausalLM.from_pretrained(base.location, **kwargs)
    if quantization == "none":
        model = model.to(device)  # type: ignore[arg-type]  # transformers types `to` oddly
    return model, tokenizer


def load_peft_model(
    base: BaseModelVersion, config: TrainingConfig, dtype_name: str, device: str
) -> tuple[Any, Any]:
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_base_model(
        base, config.quantization, config.double_quant, dtype_name, device
    )
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )
    model = get_peft_model(model, lora)
    if device == "cpu":  # on a GPU, torch's dropout is one fused kernel already
        from .dropout import use_lora_dropout

        use_lora_dropout(model)
    if config.gradient_checkpointing:
        # the embeddings are frozen, so their output must ask for gradients itself
        model.enable_input_require_grads()
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tokenizer


__all__ = [
    "default_device",
    "hardware",
    "hidden_size",
    "load_base_model",
    "load_peft_model",
    "load_tokenizer",
    "read_lines",
]
