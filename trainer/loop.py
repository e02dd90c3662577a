"""The training loop's parts: seeding, the optimizer and its schedule, one optimizer step
with assistant-only loss, and timed real steps for the compute-dtype decision."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loraledger.registry.models import (
    BaseModelVersion,
    LossPoint,
)

from . import compute_dtype
from .config import TrainingConfig

if TYPE_CHECKING:
    import torch
from .checkpoints import TrainState
from .examples import IGNORE_INDEX, Example, batches
from .runtime import load_peft_model

PROBE_TOKENS = 128  # columns of the micro-batch timed for the dtype decision


@dataclass(frozen=True)
class StepReport:
    """What the progress bar shows after each optimizer step."""

    step: int
    total: int
    loss: float
    tokens_per_second: float


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def total_steps(config: TrainingConfig, examples: int) -> int:
    if config.max_steps is not None:
        return config.max_steps
    assert config.epochs is not None
    per_epoch = max(1, examples // (config.batch_size * config.gradient_accumulation))
    return max(1, round(per_epoch * config.epochs))


def make_optimizer(model: Any, config: TrainingConfig, total: int) -> tuple[Any, Any]:
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


def one_step(
    model: Any,
    optimizer: Any,
    scheduler: Any,
    stream: Iterator[dict[str, torch.Tensor]],
    config: TrainingConfig,
    device: str,
    state: TrainState,
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
        for part in micro_batches(batch, rows):
            part = {k: v.to(device) for k, v in part.items()}
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


def micro_batches(batch: dict[str, torch.Tensor], rows: int) -> Iterator[dict[str, torch.Tensor]]:
    """``batch`` cut into micro-batches of ``rows`` rows: the longest rows first, each
    micro-batch cut to the width of its longest row. A batch is padded on the right to its
    longest row, so the columns cut are padding only (no labelled token, nothing a real
    token attends to); a short row no longer pays for the longest one's length."""
    import torch

    total = batch["input_ids"].shape[0]
    if rows >= total:
        yield batch
        return
    lengths = batch["attention_mask"].sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True)
    for start in range(0, total, rows):
        pick = order[start : start + rows]
        width = max(int(lengths[pick].max()), 1)
        yield {k: v[pick, :width] for k, v in batch.items()}


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


def timed_steps(
    base: BaseModelVersion, config: TrainingConfig, examples: Sequence[Example], device: str
) -> compute_dtype.StepFactory:
    """What the dtype decision times: the config's model built in a dtype, and one
    forward and backward pass over a micro-batch of the real data (at most
    ``PROBE_TOKENS`` columns), gradients dropped."""
    rows = config.micro_batch_size or config.batch_size

    def steps(dtype_name: str) -> Callable[[], None]:
        model, _ = load_peft_model(base, config, dtype_name, device)
        model.train()
        batch = next(batches(examples, rows, config.seed, pad_id=0))
        part = {k: v[:, :PROBE_TOKENS].to(device) for k, v in batch.items()}

        def step() -> None:
            assistant_loss(model, part, reduction="sum").backward()
            model.zero_grad(set_to_none=True)

        return step

    return steps


__all__ = [
    "PROBE_TOKENS",
    "StepReport",
    "assistant_loss",
    "make_optimizer",
    "micro_batches",
    "one_step",
    "seed_everything",
    "timed_steps",
    "total_steps",
]
