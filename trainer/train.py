"""QLoRA training that records where the adapter came from.

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

import json
import os
import platform
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraledger.registry import Registry
from loraledger.registry.audit import utcnow
from loraledger.registry.models import (
    AdapterVersion,
    BaseModelVersion,
    DatasetUse,
    DatasetVersion,
    LossPoint,
    TrainingRun,
)
from loraledger.registry.permissions import Action

from loraledger.errors import Conflict, InputError, LedgerError, UsageError

from . import compute_dtype
from .base_models import cache_dir, library_versions
from .compute_dtype import DtypeDecision
from .config import TrainingConfig, load_config
from .provenance import code_provenance

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100
CHECKPOINT_FILE = "checkpoint.pt"
PROBE_TOKENS = 128  # columns of the micro-batch timed for the dtype decision


@dataclass(frozen=True)
class StepReport:
    """What the progress bar shows after each optimizer step."""

    step: int
    total: int
    loss: float
    tokens_per_second: float


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]


@dataclass
class _State:
    step: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    loss_curve: list[LossPoint] = field(default_factory=list)
    last_tokens_per_second: float = 0.0
    rng: Any = None  # torch RNG state after the last completed step, for checkpoints


class TrainingInterrupted(LedgerError):
    """The run stopped before its last step; a checkpoint was saved for --resume."""


# --- inputs ---------------------------------------------------------------------------


def default_device() -> str:
    """Where models run: the GPU when there is one, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    for line in _read_lines("/proc/cpuinfo"):
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    for line in _read_lines("/proc/meminfo"):
        if line.startswith("MemTotal"):
            info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
            break
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def conversations(registry: Registry, version: DatasetVersion) -> list[list[dict[str, str]]]:
    """The dataset's records as chat messages, read from the verified stored file."""
    path = registry.store.path_of(version.file_sha256)
    result: list[list[dict[str, str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if version.format == "chat":
            result.append(
                [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
            )
        else:
            result.append(
                [
                    {"role": "user", "content": record["prompt"]},
                    {"role": "assistant", "content": record["completion"]},
                ]
            )
    return result


def tokenize(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> Example:
    """Token ids through the chat template, with labels only on assistant tokens.

    Each assistant turn's tokens are the difference between the conversation rendered up
    to and including that turn and the conversation rendered up to it with the
    generation prompt; the template must render prefixes as prefixes.
    """

    def render(part: list[dict[str, str]], prompt: bool) -> list[int]:
        ids = tokenizer.apply_chat_template(part, tokenize=True, add_generation_prompt=prompt)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    full = render(messages, False)
    labels = [IGNORE_INDEX] * len(full)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(render(messages[:index], True))
        through = render(messages[: index + 1], False)
        end = len(through)
        if full[:end] != through:
            raise InputError(
                "the base model's chat template does not render conversations "
                "prefix by prefix; assistant-only loss cannot be computed"
            )
        labels[start:end] = full[start:end]
    return Example(full[:max_length], labels[:max_length])


def batches(
    examples: Sequence[Example], batch_size: int, seed: int, pad_id: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches: each epoch a fresh permutation from a generator seeded by
    (seed, epoch), padded on the right."""
    import torch

    size = min(batch_size, len(examples))  # a dataset smaller than a batch is one batch
    epoch = 0
    while True:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(len(examples), generator=generator).tolist()
        for start in range(0, len(order) - size + 1, size):  # the ragged tail waits
            chosen = [examples[i] for i in order[start : start + size]]
            width = max(len(e.input_ids) for e in chosen)
            ids = torch.full((len(chosen), width), pad_id, dtype=torch.long)
            labels = torch.full((len(chosen), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(chosen), width), dtype=torch.long)
            for row, example in enumerate(chosen):
                n = len(example.input_ids)
                ids[row, :n] = torch.tensor(example.input_ids)
                labels[row, :n] = torch.tensor(example.labels)
                mask[row, :n] = 1
            yield {"input_ids": ids, "labels": labels, "attention_mask": mask}
        epoch += 1


# --- the run ----------------------------------------------------------------------------


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
        decision = DtypeDecision(_checkpoint_dtype(checkpoint), "the interrupted run's")
    else:
        decision = training_dtype(base, config, examples, device, dtype)
    dtype_name = decision.dtype
    _seed_everything(config.seed)  # after the timing, whose models drew random numbers
    model, _ = _load_model(base, config, dtype_name, device)
    total = _total_steps(config, len(examples))
    optimizer, scheduler = _optimizer(model, config, total)
    state = _State()
    fingerprint = {
        "compute_dtype": dtype_name,
        "config_sha256": config_sha,
        "base_digest": base.digest,
        "datasets": [d.merkle_root for d in datasets],
    }
    resumed_from = None
    if resume:
        state = _load_checkpoint(checkpoint, model, optimizer, scheduler, fingerprint)
        resumed_from = state.step

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    stream = batches(examples, config.batch_size, config.seed, pad_id)
    for _ in range(state.step * config.gradient_accumulation):  # replay the data order
        next(stream)
    model.train()
    state.rng = torch.get_rng_state()
    try:
        while state.step < total:
            _one_step(model, optimizer, scheduler, stream, config, device, state)
            if on_step is not None:
                last = state.loss_curve[-1]
                on_step(StepReport(state.step, total, last.loss, state.last_tokens_per_second))
            if (
                config.checkpoint_every
                and state.step % config.checkpoint_every == 0
                and (state.step < total)
            ):
                _save_checkpoint(checkpoint, model, optimizer, scheduler, state, fingerprint)
    except KeyboardInterrupt:
        _save_checkpoint(checkpoint, model, optimizer, scheduler, state, fingerprint)
        raise TrainingInterrupted(
            f"training interrupted at step {state.step} of {total}; the checkpoint is saved "
            f"at {checkpoint}: run the same command with --resume to continue"
        ) from None

    adapter_dir = run_dir / "adapter"
    _save_adapter(model, adapter_dir, base, datasets, config, config_sha)
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
        quantization=_quantization_record(config),
        compute_dtype=dtype_name,
        compute_dtype_reason=decision.reason,
        compute_dtype_measurements=decision.measurements,
        device=device,
        code=code,
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
        hardware=hardware(),
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
    version = registry.adapters.register(
        adapter_dir, config.adapter_name, actor=actor, training_run=run
    )
    checkpoint.unlink(missing_ok=True)
    return TrainResult(version, run)


def _one_step(
    model: Any,
    optimizer: Any,
    scheduler: Any,
    stream: Iterator[dict[str, torch.Tensor]],
    config: TrainingConfig,
    device: str,
    state: _State,
) -> None:
    """One optimizer step over ``gradient_accumulation`` batches.

    The loss is the mean over every labelled token of the step, however the step is cut:
    each batch (and each micro-batch of ``micro_batch_size`` rows, which bounds activation
    memory) contributes its summed token losses divided by the step's labelled-token
    count, so the gradient is the same as one big batch's.
    """
    import torch

    started = time.perf_counter()
    batches = [next(stream) for _ in range(config.gradient_accumulation)]
    labelled = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in batches)
    rows = config.micro_batch_size or config.batch_size
    tokens = 0
    loss_sum = 0.0
    for batch in batches:
        for start in range(0, batch["input_ids"].shape[0], rows):
            part = {k: v[start : start + rows].to(device) for k, v in batch.items()}
            loss = assistant_loss(model, part, reduction="sum") / max(labelled, 1)
            loss.backward()
            loss_sum += float(loss.detach())
        tokens += int(batch["attention_mask"].sum())
    torch.nn.utils.clip_grad_norm_(
        [p for p in model.parameters() if p.requires_grad], config.max_grad_norm
    )
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - started
    state.step += 1
    state.tokens += tokens
    state.elapsed += seconds
    state.last_tokens_per_second = tokens / seconds if seconds else 0.0
    state.rng = torch.get_rng_state()
    state.loss_curve.append(
        LossPoint(
            step=state.step,
            loss=round(loss_sum, 6),
            learning_rate=scheduler.get_last_lr()[0],
            tokens=state.tokens,
        )
    )


def assistant_loss(
    model: Any, batch: dict[str, torch.Tensor], reduction: str = "mean"
) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled (assistant) tokens.

    The same value as the model's own ``labels=`` loss, but the vocabulary projection runs
    only on positions whose next token is labelled: with a 49k vocabulary the full
    logits tensor of a batch (and its gradient) is most of the activation memory, and
    prompts and system messages make up most of the positions.
    """
    import torch

    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal_lm.model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    logits = causal_lm.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction=reduction)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
        screen=(rows * min(config.max_seq_length, PROBE_TOKENS), _hidden_size(base)),
    )


def timed_steps(
    base: BaseModelVersion, config: TrainingConfig, examples: Sequence[Example], device: str
) -> compute_dtype.StepFactory:
    """What the dtype decision times: the config's model built in a dtype, and one
    forward and backward pass over a micro-batch of the real data (at most
    ``PROBE_TOKENS`` columns), gradients dropped."""
    rows = config.micro_batch_size or config.batch_size

    def steps(dtype_name: str) -> Callable[[], None]:
        model, _ = _load_model(base, config, dtype_name, device)
        model.train()
        batch = next(batches(examples, rows, config.seed, pad_id=0))
        part = {k: v[:, :PROBE_TOKENS].to(device) for k, v in batch.items()}

        def step() -> None:
            assistant_loss(model, part, reduction="sum").backward()
            model.zero_grad(set_to_none=True)

        return step

    return steps


def _hidden_size(base: BaseModelVersion) -> int:
    config = json.loads((Path(base.location) / "config.json").read_text())
    return int(config.get("hidden_size") or config.get("n_embd") or 1024)


def _checkpoint_dtype(path: Path) -> str:
    import torch

    return str(torch.load(path, weights_only=True)["fingerprint"]["compute_dtype"])


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


def _load_model(
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
    if config.gradient_checkpointing:
        # the embeddings are frozen, so their output must ask for gradients itself
        model.enable_input_require_grads()
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tokenizer


def _total_steps(config: TrainingConfig, examples: int) -> int:
    if config.max_steps is not None:
        return config.max_steps
    assert config.epochs is not None
    per_epoch = max(1, examples // (config.batch_size * config.gradient_accumulation))
    return max(1, round(per_epoch * config.epochs))


def _optimizer(model: Any, config: TrainingConfig, total: int) -> tuple[Any, Any]:
    import torch
    from transformers import get_scheduler

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_scheduler(
        config.lr_scheduler,
        optimizer,
        num_warmup_steps=config.warmup_steps,
        num_training_steps=total,
    )
    return optimizer, scheduler


def _save_checkpoint(
    path: Path,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    state: _State,
    fingerprint: dict[str, Any],
) -> None:
    """Adapter weights, optimizer, scheduler, RNG and progress; written atomically."""
    import torch
    from peft import get_peft_model_state_dict

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "fingerprint": fingerprint,
        "step": state.step,
        "tokens": state.tokens,
        "elapsed": state.elapsed,
        "loss_curve": [p.model_dump() for p in state.loss_curve],
        "adapter": get_peft_model_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        # the RNG as it was after the last completed step: an interrupt in the middle of
        # a step must not leak that step's draws (dropout) into the resumed run
        "torch_rng": state.rng if state.rng is not None else torch.get_rng_state(),
    }
    partial = path.with_suffix(f".partial-{os.getpid()}")
    torch.save(payload, partial)
    os.replace(partial, path)


def _load_checkpoint(
    path: Path, model: Any, optimizer: Any, scheduler: Any, fingerprint: dict[str, Any]
) -> _State:
    import torch
    from peft import set_peft_model_state_dict

    # Our own checkpoint, loaded with weights_only=True: tensors and plain data, no code.
    payload = torch.load(path, weights_only=True)
    if payload["fingerprint"] != fingerprint:
        raise Conflict(
            f"the checkpoint at {path} was made with another config, base or data; delete "
            "it to start over"
        )
    set_peft_model_state_dict(model, payload["adapter"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["torch_rng"])
    return _State(
        step=payload["step"],
        tokens=payload["tokens"],
        elapsed=payload["elapsed"],
        loss_curve=[LossPoint(**p) for p in payload["loss_curve"]],
    )


def _save_adapter(
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
