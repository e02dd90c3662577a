"""Checkpoints of a training run: adapter weights, optimizer, scheduler, RNG and
progress, written atomically, resumed only under the same fingerprint."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraledger.registry.models import (
    LossPoint,
)

from loraledger.errors import Conflict

if TYPE_CHECKING:
    pass


CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class TrainState:
    step: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    loss_curve: list[LossPoint] = field(default_factory=list)
    last_tokens_per_second: float = 0.0
    rng: Any = None  # torch RNG state after the last completed step, for checkpoints


def save_checkpoint(
    path: Path,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    state: TrainState,
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


def load_checkpoint(
    path: Path, model: Any, optimizer: Any, scheduler: Any, fingerprint: dict[str, Any]
) -> TrainState:
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
    return TrainState(
        step=payload["step"],
        tokens=payload["tokens"],
        elapsed=payload["elapsed"],
        loss_curve=[LossPoint(**p) for p in payload["loss_curve"]],
    )


def saved_compute_dtype(path: Path) -> str:
    import torch

    return str(torch.load(path, weights_only=True)["fingerprint"]["compute_dtype"])


__all__ = [
    "CHECKPOINT_FILE",
    "TrainState",
    "load_checkpoint",
    "save_checkpoint",
    "saved_compute_dtype",
]
