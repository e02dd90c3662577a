"""Generated adapters have the layout peft writes, are reproducible by seed, and grow to
a requested size (for benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from loraledger.registry.adapter_dir import check_safetensors, read_adapter_config
from loraledger.registry.synthetic import DEMO_TARGETS, write_lora_adapter
from safetensors.numpy import load_file


def test_the_layout_is_peft_lora(tmp_path: Path) -> None:
    directory = write_lora_adapter(tmp_path / "a", hidden=16, layers=2, r=4)
    config = json.loads((directory / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4
    assert config["target_modules"] == list(DEMO_TARGETS)
    tensors = load_file(str(directory / "adapter_model.safetensors"))
    assert len(tensors) == 2 * 2 * len(DEMO_TARGETS)
    a = tensors["base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"]
    b = tensors["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]
    assert a.shape == (4, 16) and b.shape == (16, 4)
    # what register checks, without raising
    check_safetensors(directory / "adapter_model.safetensors")
    parsed, _ = read_adapter_config(directory / "adapter_config.json")
    assert parsed.peft_type == "LORA"


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), other=st.integers(0, 2**16))
def test_the_same_seed_writes_the_same_bytes(tmp_path_factory, seed: int, other: int) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("seed")
    one = write_lora_adapter(root / "one", hidden=8, layers=1, r=2, seed=seed)
    two = write_lora_adapter(root / "two", hidden=8, layers=1, r=2, seed=seed)
    three = write_lora_adapter(root / "three", hidden=8, layers=1, r=2, seed=other)
    weights = "adapter_model.safetensors"
    assert (one / weights).read_bytes() == (two / weights).read_bytes()
    assert ((one / weights).read_bytes() == (three / weights).read_bytes()) == (seed == other)


def test_target_bytes_grows_the_layers(tmp_path: Path) -> None:
    directory = write_lora_adapter(tmp_path / "big", hidden=64, r=4, target_bytes=1_000_000)
    tensors = load_file(str(directory / "adapter_model.safetensors"))
    weight_bytes = sum(t.nbytes for t in tensors.values())
    assert 1_000_000 - 8192 < weight_bytes <= 1_000_000  # whole layers of 8 KiB each
