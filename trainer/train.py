"""QLoRA training that records where the adapter came from: ``train()``, the run that
ties the trainer's parts together (runtime, examples, loop, checkpoints, adapter output).

``train()`` resolves every input through the registry (the base model re-hashed against
its manifest, each dataset re-hashed against its Merkle root), trains LoRA adapters on a
4-bit NF4/FP4 (or float) base with loss on assistant tokens only, checkpoints as it goes,
and registers the adapter -- signed -- together with a :class:`TrainingRun` record in
one transaction.

Reproducibility: the same config, data, base and seed on the same CPU give a
byte-identical adapter. What makes that hold: every random draw comes from seeded
generators (LoRA init, dropout, data order), the adapter's files are written
deterministically (peft keeps ``target_modules`` as a set, whose JSON order follows the
process's hash seed, so the config is rewritten with sorted keys and lists), and nothing
run-specific (ids, times, paths) goes into the adapter directory.
"""

from __future__ import annotations

import platform
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.audit import utcnow
from loraledger.registry.models import (
    AdapterVersion,
    BaseModelVersion,
    CodeProvenance,
    DatasetUse,
    Hardware,
    Quantization,
    TrainingRun,
)
from loraledger.registry.permissions import Action

from loraledger.errors import Conflict, InputError, LedgerError, UsageError

from . import compute_dtype
from .adapter_output import save_adapter
from .base_models import cache_dir, library_versions
from .checkpoints import (
    CHECKPOINT_FILE,
    TrainState,
    load_checkpoint,
    save_checkpoint,
    saved_compute_dtype,
)
from .compute_dtype import DtypeDecision
from .config import TrainingConfig, load_config
from .examples import IGNORE_INDEX, Example, batches, conversations, tokenize
from .loop import (
    PROBE_TOKENS,
    StepReport,
    make_optimizer,
    one_step,
    seed_everything,
    timed_steps,
    total_steps,
)
from .provenance import code_provenance
from .runtime import default_device, hardware, hidden_size, load_peft_model, load_tokenizer


class TrainingInterrupted(LedgerError):
    """The run stopped before its last step; a checkpoint was saved for --resume."""


@dataclass(frozen=True)
class TrainResult:
    version: AdapterVersion
    run: TrainingRun


def train(
    registry: Registry,
    config_path: Path,
    *,
    actor: str | None,
    resume: bool = False,
    allow_dirty: bool = False,
    code_dir: Path | None = None,
    work_dir: Path | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    dtype: str | None = None,
) -> TrainResult:
    """Train an adapter as ``config_path`` says and register it with its provenance.

    ``dtype`` overrides the config's ``compute_dtype`` (``--compute-dtype``).

    ``code_dir`` is the source tree whose commit is recorded (by default the one this
    code runs from); ``work_dir`` holds checkpoints and the adapter before registration.
    Interrupted (Ctrl-C), the run saves a checkpoint that ``resume=True`` continues.
    """
    config, config_sha = load_config(config_path)
    registry.act_as(actor, Action.TRAIN)
    code = code_provenance(code_dir or Path(__file__).resolve().parents[1])
    if code["dirty"] and not allow_dirty:
        raise Conflict(
            f"the code at {code['repository']} has uncommitted changes "
            f"({', '.join(code['changes'][:5])}); commit them, or pass --allow-dirty (recorded "
            "in the training run)"
        )
    code["allow_dirty"] = allow_dirty

    base = registry.base_models.verify(config.base)
    datasets = [registry.datasets.verify(ref) for ref in config.datasets]

    import torch

    device = default_device()
    run_dir = (work_dir or cache_dir() / "runs") / f"{config.adapter_name}-{config_sha[:16]}"
    checkpoint = run_dir / CHECKPOINT_FILE
    if checkpoint.exists() and not resume:
        raise UsageError(
            f"an interrupted run of this config left a checkpoint at {checkpoint}; pass "
            "--resume to continue it, or delete the directory to start over"
        )
    if resume and not checkpoint.exists():
        raise UsageError(f"nothing to resume: no checkpoint at {checkpoint}")

    started_at = utcnow()
    tokenizer = load_tokenizer(base)
    examples = [
        tokenize(tokenizer, conv, config.max_seq_length)
        for ds in datasets
        for conv in conversations(registry, ds)
    ]
    records = len(examples)
    # a record whose assistant turn lies wholly beyond max_seq_length teaches nothing;
    # it is left out and counted in the training-run record
    examples = [e for e in examples if any(label != IGNORE_INDEX for label in e.labels)]
    if not examples:
        raise InputError(
            "no record has assistant tokens within max_seq_length; raise "
            "max_seq_length or check the datasets"
        )
    if resume:  # the interrupted run's dtype, whatever a new decision would say
        decision = DtypeDecision(saved_compute_dtype(checkpoint), "the interrupted run's")
    else:
        decision = training_dtype(base, config, examples, device, dtype)
    dtype_name = decision.dtype
    seed_everything(config.seed)  # after the timing, whose models drew random numbers
    model, _ = load_peft_model(base, config, dtype_name, device)
    total = total_steps(config, len(examples))
    optimizer, scheduler = make_optimizer(model, config, total)
    state = TrainState()
    fingerprint = {
        "compute_dtype": dtype_name,
        "config_sha256": config_sha,
        "base_digest": base.digest,
        "datasets": [d.merkle_root for d in datasets],
    }
    resumed_from = None
    if resume:
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, fingerprint)
        resumed_from = state.step

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    stream = batches(examples, config.batch_size, config.seed, pad_id)
    for _ in range(state.step * config.gradient_accumulation):  # replay the data order
        next(stream)
    model.train()
    state.rng = torch.get_rng_state()
    try:
        while state.step < total:
            one_step(model, optimizer, scheduler, stream, config, device, state)
            if on_step is not None:
                last = state.loss_curve[-1]
                on_step(StepReport(state.step, total, last.loss, state.last_tokens_per_second))
            if (
                config.checkpoint_every
                and state.step % config.checkpoint_every == 0
                and (state.step < total)
            ):
                save_checkpoint(checkpoint, model, optimizer, scheduler, state, fingerprint)
    except KeyboardInterrupt:
        save_checkpoint(checkpoint, model, optimizer, scheduler, state, fingerprint)
        raise TrainingInterrupted(
            f"training interrupted at step {state.step} of {total}; the checkpoint is saved "
            f"at {checkpoint}: run the same command with --resume to continue"
        ) from None

    adapter_dir = run_dir / "adapter"
    save_adapter(model, adapter_dir, base, datasets, config, config_sha)
    run = TrainingRun(
        id=str(uuid.uuid4()),
        config=config.model_dump(mode="json"),
        config_sha256=config_sha,
        base_ref=base.ref,
        base_digest=base.digest,
        datasets=tuple(
            DatasetUse(
                ref=d.ref,
                file_sha256=d.file_sha256,
                merkle_root=d.merkle_root,
                records=d.record_count,
            )
            for d in datasets
        ),
        quantization=Quantization.model_validate(_quantization_record(config)),
        compute_dtype=dtype_name,
        compute_dtype_reason=decision.reason,
        compute_dtype_measurements=decision.measurements,
        device=device,
        code=CodeProvenance.model_validate(code),
        libraries=library_versions(
            "torch",
            "transformers",
            "peft",
            "bitsandbytes",
            "accelerate",
            "safetensors",
            "loraledger",
        )
        | {"python": platform.python_version()},
        hardware=Hardware.model_validate(hardware()),
        seed=config.seed,
        loss_curve=tuple(state.loss_curve),
        steps=state.step,
        tokens_seen=state.tokens,
        wall_seconds=round(state.elapsed, 3),
        resumed_from_step=resumed_from,
        records_without_assistant_tokens=records - len(examples),
        started_at=started_at,
        finished_at=utcnow(),
        actor=str(actor),
    )
    # linked, not copied: the adapter directory is this run's own, and saving into it
    # again starts from an empty one (save_adapter), so nothing rewrites a stored file
    version = registry.adapters.register(
        adapter_dir, config.adapter_name, actor=actor, training_run=run, link=True
    )
    checkpoint.unlink(missing_ok=True)
    return TrainResult(version, run)


def _quantization_record(config: TrainingConfig) -> dict[str, Any]:
    if config.quantization == "none":
        return {"method": "none"}
    return {
        "method": config.quantization,
        "double_quant": config.double_quant,
        "library": "bitsandbytes",
        "load_in_4bit": True,
    }


def training_dtype(
    base: BaseModelVersion,
    config: TrainingConfig,
    examples: Sequence[Example],
    device: str,
    requested: str | None = None,
) -> DtypeDecision:
    """The compute dtype to train ``config`` in (``requested`` overrides the config's),
    measured on the real step where it is "auto" on a CPU (:mod:`.compute_dtype`).
    The models it builds draw random numbers: seed after it."""
    rows = config.micro_batch_size or config.batch_size
    model_key = {
        "base_digest": base.digest,
        "quantization": config.quantization,
        "double_quant": config.double_quant,
        "lora": config.lora.model_dump(mode="json"),
        "gradient_checkpointing": config.gradient_checkpointing,
        "rows": rows,
        "max_seq_length": config.max_seq_length,
    }

    return compute_dtype.decide(
        requested or config.compute_dtype,
        device,
        model_key=model_key,
        steps=timed_steps(base, config, examples, device),
        cache=cache_dir() / compute_dtype.CACHE_FILE,
        cpu=str(hardware().get("cpu", "unknown cpu")),
        screen=(rows * min(config.max_seq_length, PROBE_TOKENS), hidden_size(base)),
    )
