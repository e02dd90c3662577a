"""Training examples: a dataset version's records as chat messages (read from the verified
stored file), tokenized through the base's chat template with labels on assistant tokens
only, and served as seeded, padded batches."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loraledger.registry import Registry
from loraledger.registry.models import (
    DatasetVersion,
)

from loraledger.errors import InputError

if TYPE_CHECKING:
    import torch


IGNORE_INDEX = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]


def conversations(registry: Registry, version: DatasetVersion) -> list[list[dict[str, str]]]:
    """The dataset's records as chat messages, read from the verified stored file."""
    data = registry.store.read_verified(version.file_sha256)
    result: list[list[dict[str, str]]] = []
    for line in data.decode("utf-8").splitlines():
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


__all__ = ["IGNORE_INDEX", "Example", "batches", "conversations", "tokenize"]
