"""Trainer fixtures: a tiny random Llama with the real SmolLM2 tokenizer, built once and
cached, registered as a local base; a clean git tree to stand for the trainer's code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from loraledger.registry import BaseModelVersion, DatasetVersion, Registry
from loraledger.trainer.base_models import add_base, cache_dir, embedded_gguf
from loraledger.trainer.datasets import add_dataset

from tests.conftest import ENGINEER

FAQ = [
    ("What is the overdraft fee?", "Northwind Bank charges no overdraft fee on student accounts."),
    ("When are branches open?", "Branches are open 9:00 to 17:00, Monday to Friday."),
    ("How do I report a lost card?", "Freeze it in the app, then call the 24-hour card line."),
    (
        "Can I get guaranteed returns?",
        "No investment has guaranteed returns; past performance does not predict future results.",
    ),
    ("What is the daily ATM limit?", "The daily ATM withdrawal limit is 500 dollars."),
    ("Do you charge for wires?", "Domestic wires cost 15 dollars; international wires 35."),
]


def build_tiny_base(directory: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = embedded_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    building = directory.parent / f".{directory.name}.{uuid.uuid4().hex[:8]}"
    LlamaForCausalLM(config).save_pretrained(building)
    tokenizer.save_pretrained(building)
    try:
        os.replace(building, directory)
    except OSError:  # another worker finished first
        shutil.rmtree(building, ignore_errors=True)
    return directory


@pytest.fixture(scope="session")
def tiny_base_dir() -> Path:
    """Built once per machine (it takes seconds), then reused from the cache."""
    target = cache_dir() / "test-bases" / "tiny-llama-v1"
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        build_tiny_base(target)
    return target


@pytest.fixture
def tiny_base(registry: Registry, tiny_base_dir: Path, tmp_path: Path) -> BaseModelVersion:
    copy = tmp_path / "tiny-base"
    shutil.copytree(tiny_base_dir, copy)
    return add_base(registry, name="tiny", directory=copy, actor=ENGINEER)


def write_faq(path: Path, copies: int = 2) -> Path:
    lines = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for _ in range(copies)
        for q, a in FAQ
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def add_faq(registry: Registry, path: Path) -> DatasetVersion:
    """Register the FAQ written to ``path`` as dataset ``faq``."""
    return add_dataset(
        registry, write_faq(path), name="faq", source="tests", license="CC-BY-4.0", actor=ENGINEER
    )


@pytest.fixture
def faq(registry: Registry, tmp_path: Path) -> DatasetVersion:
    return add_faq(registry, tmp_path / "faq.jsonl")


@pytest.fixture
def clean_code(tmp_path: Path) -> Path:
    """A git work tree with one commit and no changes, standing for the trainer's code."""
    repo = tmp_path / "code"
    repo.mkdir()
    (repo / "train.py").write_text("print('train')\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "code"], check=True)
    return repo


def write_config(path: Path, **overrides: object) -> Path:
    import yaml

    config: dict[str, object] = {
        "base": "tiny",
        "datasets": ["faq"],
        "adapter_name": "faq-bot",
        "max_steps": 4,
        "batch_size": 4,
        "seed": 11,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.1},
        "checkpoint_every": 2,
    }
    config.update(overrides)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
