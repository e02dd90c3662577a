"""LoRA dropout at the speed of the random-number generator, for training on the CPU.

peft puts an ``nn.Dropout`` before every LoRA ``A`` matrix: seven per decoder layer, on
activations as wide as the MLP. On the CPU, ``torch.nn.functional.dropout`` draws one
Mersenne-Twister number per element (``bernoulli_``), divides and multiplies, and keeps a
mask in the activations' dtype for the backward pass: measured at 15% of a bfloat16
training step of the embedded model (``docs/training.md``). :class:`LoraDropout` draws
64-bit words and cuts each into four 16-bit lanes (a quarter of the generator's work),
keeps an element when its lane clears the threshold, and keeps a one-byte mask.

The same distribution within 1/65536: an element is dropped with probability
``round(p * 65536) / 65536`` (0.05 becomes 0.0500030). The draws come from torch's
generator, so seeding, a resumed run's saved generator state and gradient checkpointing's
replay of a forward pass give the same masks, as with ``nn.Dropout``.
"""

from __future__ import annotations

from typing import Any

import torch

LANES = 65536


class LoraDropout(torch.nn.Module):
    """Inverted dropout with probability ``p`` (training only), masks drawn 16 bits an
    element."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        # keep an element when its lane (uniform on [-32768, 32767]) is >= threshold
        self.threshold = -LANES // 2 + round(p * LANES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return torch.where(keep_mask(x.shape, self.threshold, x.device), x / (1.0 - self.p), 0)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def keep_mask(shape: torch.Size, threshold: int, device: torch.device) -> torch.Tensor:
    """A boolean tensor of ``shape``: True where a uniform 16-bit lane is >= ``threshold``."""
    count = shape.numel()
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), 2**63 - 1)  # every bit uniform (the range's top is 2^-64 short)
    return words.view(torch.int16)[:count].view(shape) >= threshold


def use_lora_dropout(model: Any) -> int:
    """Replace every LoRA layer's ``nn.Dropout`` in ``model`` with :class:`LoraDropout` of
    the same probability; returns how many were replaced."""
    replaced = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, torch.nn.ModuleDict):
            continue
        for name, dropout in list(dropouts.items()):
            if isinstance(dropout, torch.nn.Dropout) and dropout.p > 0:
                dropouts[name] = LoraDropout(dropout.p)
                replaced += 1
    return replaced


__all__ = ["LANES", "LoraDropout", "keep_mask", "use_lora_dropout"]
