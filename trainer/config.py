"""The training configuration: one YAML file, validated with pydantic, errors with lines.

Example (every field but ``base``, ``datasets`` and ``adapter_name`` has a default)::

    base: smollm2-135m-instruct          # a registered base: NAME or NAME@vN
    datasets: [bank-support]             # registered datasets: NAME (latest) or NAME@vN
    adapter_name: bank-support
    lora: {r: 8, alpha: 16, dropout: 0.05, target_modules: all-linear}
    quantization: nf4                    # nf4 | fp4 | none (plain LoRA)
    double_quant: true
    learning_rate: 2.0e-4
    max_steps: 60                        # or epochs: 2
    batch_size: 8
    gradient_accumulation: 1
    max_seq_length: 256
    seed: 1234

An unknown key is refused, naming the keys known at that place: a misspelt setting must
not silently train with the default. A config that declares a newer ``format_version``
than this LoRA Ledger reads is loaded with a warning naming the keys it does not know,
which are neither used nor stored in the training run.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

from loraledger.registry.refs import Ref, validate_name
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loraledger.errors import LedgerWarning
from loraledger.yamlfile import as_value_error, load_validated


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=8, gt=0, description="rank of the update matrices")
    alpha: int = Field(
        default=16, gt=0, description="scaling numerator: the update is scaled by alpha/r"
    )
    dropout: float = Field(default=0.05, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: Literal["all-linear"] | list[str] = Field(
        default="all-linear", description="'all-linear' or module names such as [q_proj, v_proj]"
    )


class TrainingConfig(BaseModel):
    """One training run's settings. Defaults live here and nowhere else."""

    model_config = ConfigDict(extra="forbid")
    FORMAT_VERSION: ClassVar[int] = 1

    format_version: int = Field(
        default=1, ge=1, description="the config format; a newer one's unknown keys are ignored"
    )
    ignored_keys: list[str] = Field(
        default_factory=list,
        exclude=True,
        description="keys of a newer format this version does not know: warned about, "
        "neither used nor stored (set by the loader, not in a file)",
    )
    base: str = Field(description="registered base model: NAME or NAME@vN")
    datasets: list[str] = Field(min_length=1, description="registered datasets")
    adapter_name: str = Field(description="name the adapter is registered under")
    lora: LoraSettings = LoraSettings()
    quantization: Literal["nf4", "fp4", "none"] = Field(
        default="nf4", description="4-bit base (QLoRA) or none (plain LoRA on a float base)"
    )
    double_quant: bool = Field(default=True, description="also quantize the quantization constants")
    compute_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description="auto: decided by timing the real training step (docs/training.md)",
    )
    learning_rate: float = Field(default=2e-4, gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_steps: int = Field(default=0, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0, description="optimizer steps; or use epochs")
    epochs: float | None = Field(
        default=None, gt=0, description="passes over the data; or max_steps"
    )
    batch_size: int = Field(default=8, gt=0)
    gradient_accumulation: int = Field(default=1, gt=0)
    micro_batch_size: int | None = Field(
        default=None,
        gt=0,
        description="rows per forward/backward pass; smaller saves activation memory, "
        "same gradient (default: batch_size)",
    )
    max_seq_length: int = Field(default=256, ge=16)
    seed: int = Field(default=1234, ge=0)
    gradient_checkpointing: bool = Field(
        default=False,
        description="recompute activations in the backward pass: less memory, ~1/3 slower",
    )
    checkpoint_every: int = Field(
        default=20, ge=0, description="steps between checkpoints; 0: never"
    )

    @field_validator("base")
    @classmethod
    def _base_ref(cls, value: str) -> str:
        as_value_error(lambda: Ref.parse(value, what="base model"))
        return value

    @field_validator("datasets")
    @classmethod
    def _dataset_refs(cls, value: list[str]) -> list[str]:
        for item in value:
            as_value_error(lambda item=item: Ref.parse(item, what="dataset"))  # type: ignore[misc]
        if len(set(value)) != len(value):
            raise ValueError("a dataset is listed twice")
        return value

    @field_validator("adapter_name")
    @classmethod
    def _adapter_name(cls, value: str) -> str:
        as_value_error(lambda: validate_name(value, what="adapter name"))
        return value

    @model_validator(mode="before")
    @classmethod
    def _newer_format(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "ignored_keys" in data:
            raise ValueError("ignored_keys is not a setting; remove it")
        version = data.get("format_version")
        if (
            isinstance(version, int)
            and not isinstance(version, bool)
            and (version > cls.FORMAT_VERSION)
        ):
            known = set(cls.model_fields) - {"ignored_keys"}
            ignored = sorted(str(k) for k in data if k not in known)
            data = {k: v for k, v in data.items() if k in known}
            data["ignored_keys"] = ignored
        return data

    @model_validator(mode="after")
    def _one_length(self) -> TrainingConfig:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of max_steps or epochs")
        return self

    @property
    def unknown_keys(self) -> list[str]:
        return list(self.ignored_keys)


def load_config(path: Path) -> tuple[TrainingConfig, str]:
    """Parse and validate a training config; returns it and the sha256 of its bytes. A
    config of a newer format loads with a :class:`LedgerWarning` naming what is ignored."""
    config, digest, _ = load_validated(path, TrainingConfig, what="training config")
    if config.ignored_keys:
        warnings.warn(
            f"{path}: format {config.format_version} is newer than this LoRA Ledger reads "
            f"({TrainingConfig.FORMAT_VERSION}); ignoring {', '.join(config.ignored_keys)} "
            "(neither used nor recorded); upgrade loraledger to use them",
            LedgerWarning,
            stacklevel=2,
        )
    return config, digest
