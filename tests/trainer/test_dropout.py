"""LoRA dropout for CPU training (trainer/dropout.py): torch.nn.Dropout's distribution
(within 1/65536), its scaling and gradient, drawn from torch's generator."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from loraledger.registry.models import BaseModelVersion
from loraledger.trainer.config import LoraSettings, TrainingConfig
from loraledger.trainer.dropout import LANES, LoraDropout, keep_mask
from loraledger.trainer.runtime import load_peft_model


@settings(max_examples=40, deadline=None)
@given(
    p=st.floats(min_value=0.0, max_value=0.9),
    shape=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=3),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_each_element_is_dropped_or_scaled_and_the_gradient_follows(
    p: float, shape: list[int], seed: int
) -> None:
    torch.manual_seed(seed)
    x = torch.randn(shape, requires_grad=True)
    dropout = LoraDropout(p).train()
    y = dropout(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / (1 - p))
    y.sum().backward()
    assert x.grad is not None
    assert torch.allclose(x.grad, kept.float() / (1 - p))


def test_the_drop_rate_is_p_within_one_part_in_65536() -> None:
    torch.manual_seed(0)
    count = 4_000_000
    for p in (0.05, 0.1, 0.5):
        dropped = ~keep_mask(torch.Size([count]), LoraDropout(p).threshold, torch.device("cpu"))
        rate = float(dropped.float().mean())
        exact = round(p * LANES) / LANES
        assert abs(exact - p) <= 1 / LANES
        sigma = (exact * (1 - exact) / count) ** 0.5
        assert abs(rate - exact) < 5 * sigma, (p, rate)


def test_every_lane_of_a_word_is_uniform() -> None:
    # a 64-bit word is cut into four 16-bit lanes; a generator that left any bit of the
    # word fixed (the sign bit, say) would make one lane in four drop far too often
    torch.manual_seed(1)
    mask = keep_mask(torch.Size([4 * 250_000]), 0, torch.device("cpu")).view(-1, 4)
    for lane in range(4):
        assert abs(float(mask[:, lane].float().mean()) - 0.5) < 0.005


def test_the_same_seed_draws_the_same_mask_and_evaluation_drops_nothing() -> None:
    x = torch.randn(64, 32)
    dropout = LoraDropout(0.3).train()
    torch.manual_seed(5)
    first = dropout(x)
    torch.manual_seed(5)
    assert torch.equal(dropout(x), first)
    assert not torch.equal(dropout(x), first)
    assert torch.equal(dropout.eval()(x), x)
    assert torch.equal(LoraDropout(0.0).train()(x), x)


def test_a_probability_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        LoraDropout(1.0)


def test_a_cpu_training_model_has_no_torch_dropout_left(tiny_base: BaseModelVersion) -> None:
    config = TrainingConfig(
        base="tiny",
        datasets=["faq"],
        adapter_name="a",
        max_steps=1,
        lora=LoraSettings(r=4, alpha=8, dropout=0.1),
    )
    model, _ = load_peft_model(tiny_base, config, "float32", "cpu")
    dropouts = [
        d
        for m in model.modules()
        if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict)
        for d in m.lora_dropout.values()
    ]
    assert dropouts and all(isinstance(d, LoraDropout) and d.p == 0.1 for d in dropouts)
