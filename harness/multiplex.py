"""Generating for every subject of an evaluation in one mixed-adapter batch.

All subjects of one evaluation run the same suite with the same settings, so lm-eval asks
each of them for exactly the same generation batches, in the same order. Generation is
where the time goes (one forward pass per new token), and on a CPU a batch of 4 x 8 rows
costs far less than 4 batches of 8. So while the first subject runs, each generation
batch is computed for every subject at once -- peft's mixed-adapter batches
(``adapter_names=[...]``, one name per row, ``"__base__"`` for the bare base) -- and the
other subjects' rows are kept until their own run asks for that very batch.

The stored rows are keyed by subject *and* by the exact request (input token ids, length
limit, stop sequences, generation settings), so one subject can never be handed
another's answers -- the failure of lm-eval's own request cache (EleutherAI/lm-
evaluation-harness#2715, #4063), which is why that cache stays off. A request that was not
precomputed (a subject whose batches differ) is generated normally. Log-likelihood
requests are not multiplexed: they take one forward pass each, and their logits
(batch x length x vocabulary) are too large to keep.

A shared batch says which adapter serves each row (``adapter_names``; ``"__base__"`` for
the bare base). A batch served to one subject alone -- every log-likelihood batch, and
generation when the others' rows are already kept -- takes peft's fast path instead: the
subject's adapter switched on (``set_adapter``), or all of them off for the base
(``disable_adapter()``); peft's per-row path costs a Python loop per layer and adapter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lm_eval.models.huggingface import HFLM

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


class MultiplexedHFLM(HFLM):  # type: ignore[misc]  # lm-eval is untyped
    """``HFLM`` whose generation batches are shared by all subjects of one evaluation."""

    def __init__(self, *args: Any, subjects: list[str], per_row: bool, **kwargs: Any) -> None:
        """``subjects``: peft adapter names (``"__base__"`` for the bare base);
        ``per_row``: whether the model is a peft model taking ``adapter_names``."""
        super().__init__(*args, **kwargs)
        self._subjects = list(subjects)
        self._per_row = per_row
        self._finished: set[str] = set()
        self._active = self._subjects[0]
        self._kept: dict[tuple[str, str], Any] = {}
        self._grouped: dict[tuple[str, ...], _GroupedLora | None] = {}

    def activate(self, subject: str) -> None:
        """Serve ``subject`` from now on."""
        if subject not in self._subjects:
            raise KeyError(subject)
        self._active = subject

    def finish(self, subject: str) -> None:
        """Drop whatever was kept for ``subject`` and not asked for; it is served no more."""
        self._finished.add(subject)
        for key in [k for k in self._kept if k[0] == subject]:
            del self._kept[key]
        for names in [n for n in self._grouped if subject in n]:  # its stacked weights
            del self._grouped[names]

    def _model_generate(
        self, context: Any, max_length: int, stop: list[str], **generation_kwargs: Any
    ) -> Any:
        key = _request_key(context, max_length, stop, generation_kwargs)
        kept = self._kept.pop((self._active, key), None)
        if kept is not None:
            return kept
        others = [
            s
            for s in self._subjects
            if s != self._active and s not in self._finished and (s, key) not in self._kept
        ]
        if not self._per_row or not others:  # one subject to serve (or the others are kept)
            with self._serving_active():
                return super()._model_generate(context, max_length, stop, **generation_kwargs)
        names = [self._active, *others]
        rows = int(context.shape[0])
        batch = context.repeat(len(names), 1)
        mask = generation_kwargs.get("attention_mask")
        if mask is not None:
            generation_kwargs["attention_mask"] = mask.repeat(len(names), 1)
        if tuple(names) not in self._grouped:
            self._grouped[tuple(names)] = _GroupedLora.build(self.model, names)
        grouped = self._grouped[tuple(names)]
        if grouped is not None:
            with self.model.disable_adapter(), grouped:
                output = super()._model_generate(batch, max_length, stop, **generation_kwargs)
        else:
            generation_kwargs["adapter_names"] = [name for name in names for _ in range(rows)]
            output = super()._model_generate(batch, max_length, stop, **generation_kwargs)
        for index, name in enumerate(names[1:], start=1):
            self._kept[(name, key)] = output[index * rows : (index + 1) * rows]
        return output[:rows]

    def _model_call(self, inps: Any, attn_mask: Any = None, labels: Any = None) -> Any:
        with self._serving_active():
            return super()._model_call(inps, attn_mask, labels)

    @contextmanager
    def _serving_active(self) -> Iterator[None]:
        """A uniform batch takes peft's fast path: the active adapter switched on, or all
        adapters off for the bare base (no other subject shares such a batch)."""
        if not self._per_row:
            yield
        elif self._active == BASE:
            with self.model.disable_adapter():
                yield
        else:
            self.model.set_adapter(self._active)
            yield


class _GroupedLora:
    """LoRA deltas for a batch of equal row groups, one group per subject, in two batched
    matrix products per layer instead of peft's per-row path (a Python loop over the
    adapters, with index copies, in every layer at every token).

    Used inside ``disable_adapter()``, so each LoRA layer returns its base output and a
    forward hook adds ``(x_k @ A_k) @ B_k * scaling_k`` for every group k at once (zeros
    for the bare base, and for an adapter that does not adapt that layer; ranks padded with
    zeros). Only plain LoRA on linear layers qualifies; anything else (DoRA, variants,
    embeddings) takes peft's own per-row path.
    """

    def __init__(self, layers: list[tuple[Any, Any, Any, Any]]) -> None:
        self._layers = layers
        self._hooks: list[Any] = []

    @classmethod
    def build(cls, model: Any, names: list[str]) -> _GroupedLora | None:
        import torch
        from peft.tuners.lora import LoraLayer

        layers = []
        for found in model.modules():
            if not isinstance(found, LoraLayer):
                continue
            module: Any = found  # peft's layers are loosely typed
            present = [n for n in names if n in module.lora_A]
            if any(
                module.use_dora.get(n, False)
                or n in getattr(module, "lora_variant", {})
                or not isinstance(module.lora_A[n], torch.nn.Linear)
                for n in present
            ):
                return None
            if not present:
                continue
            first = module.lora_A[present[0]].weight
            rank = max(module.lora_A[n].weight.shape[0] for n in present)
            width = first.shape[1]
            height = module.lora_B[present[0]].weight.shape[0]
            a = torch.zeros(len(names), width, rank, dtype=first.dtype, device=first.device)
            b = torch.zeros(len(names), rank, height, dtype=first.dtype, device=first.device)
            scale = torch.zeros(len(names), 1, 1, dtype=first.dtype, device=first.device)
            for k, name in enumerate(names):
                if name in present:
                    r = module.lora_A[name].weight.shape[0]
                    a[k, :, :r] = module.lora_A[name].weight.T
                    b[k, :r, :] = module.lora_B[name].weight.T
                    scale[k] = module.scaling[name]
            layers.append((module, a, b, scale))
        return cls(layers)

    def __enter__(self) -> _GroupedLora:
        for module, a, b, scale in self._layers:
            self._hooks.append(module.register_forward_hook(_delta_hook(a, b, scale)))
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()


def _delta_hook(a: Any, b: Any, scale: Any) -> Any:
    import torch

    groups = a.shape[0]

    def hook(module: Any, args: tuple[Any, ...], output: Any) -> Any:
        x = args[0]
        grouped = x.reshape(groups, -1, x.shape[-1])
        if grouped.dtype != a.dtype:
            grouped = grouped.to(a.dtype)
        delta = torch.bmm(torch.bmm(grouped, a), b).mul_(scale).reshape(output.shape)
        if delta.dtype != output.dtype:
            delta = delta.to(output.dtype)
        if torch.is_grad_enabled():
            return output + delta
        return output.add_(delta)  # generation: the base layer's fresh output, kept by no one

    return hook


def _request_key(
    context: Any, max_length: int, stop: list[str], generation_kwargs: dict[str, Any]
) -> str:
    """sha256 over everything that decides a generation batch's output (the input ids, the
    attention mask, the length limit, stop sequences and generation settings)."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in generation_kwargs.items() if k != "attention_mask"}
    for tensor in (context, generation_kwargs.get("attention_mask")):
        if tensor is None:
            digest.update(b"none")
            continue
        digest.update(repr((tuple(tensor.shape), str(tensor.dtype))).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(
        json.dumps([max_length, list(stop), settings], sort_keys=True, default=str).encode()
    )
    return digest.hexdigest()


__all__ = ["BASE", "MultiplexedHFLM"]
