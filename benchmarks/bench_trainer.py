"""Training speed and memory: LoRA Ledger's trainer against the common QLoRA recipe.

One run, same model (the embedded SmolLM2-135M-Instruct), same data (the demo's Northwind
Bank conversations, tokenized once, assistant-only labels), same LoRA settings, same
number of steps. Each contender runs in its own process so its peak RSS is its own:

* ``loraledger``     -- this trainer: NF4 + double quant, compute dtype chosen by
                        measurement (float32 on this CPU), plain AdamW loop;
* ``recipe-bf16``    -- the popular tutorial recipe: transformers ``Trainer`` + peft +
                        bitsandbytes NF4 with bfloat16 compute, prepare_model_for_kbit_training
                        (gradient checkpointing), bf16 mixed precision;
* ``recipe-fp32``    -- the same recipe with float32 compute (its best configuration here);
* ``loraledger-micro2``, ``loraledger-micro4`` -- this trainer with ``micro_batch_size``
                        2 or 4 (same gradient, less activation memory);
* ``loraledger-ckpt`` -- this trainer with ``gradient_checkpointing: true``.

Printed: tokens/s (timed steps only, after one warm-up step), peak RSS, the ratio of this
trainer's tokens/s to the best recipe's, and model FLOPs utilization: 6 x parameters x
tokens/s (the usual "model FLOPs" convention; LoRA skips the frozen weights' gradients, so
the hardware does less) over the float32 GEMM rate measured in the same run. Targets:
>= 1.3x the best recipe's tokens/s at no more peak memory; MFU >= 50%.

    .venv/bin/python benchmarks/bench_trainer.py [--steps 4] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "trainer" / "demo" / "northwind_bank_support.jsonl"
OURS = ("loraledger", "loraledger-micro2", "loraledger-micro4", "loraledger-ckpt")
CONTENDERS = (*OURS, "recipe-bf16", "recipe-fp32")


def gemm_flops() -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        a @ b
        runs.append(time.perf_counter() - started)
    return 2 * 2048**3 / sorted(runs)[2]


def examples(base_dir: Path, max_length: int) -> list[Any]:
    from loraledger.trainer.examples import tokenize
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    records = [json.loads(line) for line in DEMO.read_text().splitlines()]
    return [tokenize(tokenizer, r["messages"], max_length) for r in records]


def worker(name: str, base_dir: Path, steps: int, batch_size: int) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    data = examples(base_dir, 160)
    if name.startswith("loraledger"):
        return run_loraledger(
            base_dir,
            data,
            steps,
            batch_size,
            checkpointing=name.endswith("-ckpt"),
            micro_batch_size=int(name[-1]) if "-micro" in name else None,
        )
    return run_recipe(
        base_dir,
        data,
        steps,
        batch_size,
        torch.bfloat16 if name == "recipe-bf16" else torch.float32,
    )


def _lora() -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )


def run_loraledger(
    base_dir: Path,
    data: list[Any],
    steps: int,
    batch_size: int,
    checkpointing: bool,
    micro_batch_size: int | None,
) -> dict[str, Any]:
    """This trainer's own loading path and loop (trainer/runtime.py, trainer/loop.py)."""
    import torch
    from loraledger.registry.audit import utcnow
    from loraledger.registry.models import BaseModelVersion
    from loraledger.trainer.checkpoints import TrainState
    from loraledger.trainer.config import LoraSettings, TrainingConfig
    from loraledger.trainer.examples import batches
    from loraledger.trainer.loop import make_optimizer, one_step
    from loraledger.trainer.runtime import load_peft_model
    from loraledger.trainer.train import training_dtype

    config = TrainingConfig(
        base="b",
        datasets=["d"],
        adapter_name="a",
        max_steps=steps + 1,
        batch_size=batch_size,
        learning_rate=2e-4,
        gradient_checkpointing=checkpointing,
        micro_batch_size=micro_batch_size,
        lora=LoraSettings(r=16, alpha=32, dropout=0.05),
    )
    base = BaseModelVersion(
        name="b",
        version=1,
        digest="",
        kind="local",
        location=str(base_dir),
        architecture="llama",
        origin={},
        file_count=0,
        total_bytes=0,
        created_at=utcnow(),
        created_by="",
    )
    dtype = training_dtype(base, config, data, "cpu").dtype  # as `loraledger train` decides
    torch.manual_seed(0)
    model, _ = load_peft_model(base, config, dtype, "cpu")
    optimizer, scheduler = make_optimizer(model, config, steps + 1)
    stream = batches(data, batch_size, 0, pad_id=2)
    state = TrainState()
    model.train()
    one_step(model, optimizer, scheduler, stream, config, "cpu", state)  # warm-up
    tokens_before, seconds_before = state.tokens, state.elapsed
    for _ in range(steps):
        one_step(model, optimizer, scheduler, stream, config, "cpu", state)
    return {
        "tokens": state.tokens - tokens_before,
        "seconds": state.elapsed - seconds_before,
        "compute_dtype": dtype,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def run_recipe(
    base_dir: Path, data: list[Any], steps: int, batch_size: int, dtype: Any
) -> dict[str, Any]:
    """The tutorial recipe: Trainer + prepare_model_for_kbit_training + NF4."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BitsAndBytesConfig,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    model = AutoModelForCausalLM.from_pretrained(base_dir, quantization_config=quant, dtype=dtype)
    model = prepare_model_for_kbit_training(model)
    model = get_peft_model(model, _lora())
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    rows = [
        {"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * len(e.input_ids)}
        for e in data
    ]

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.starts: list[float] = []
            self.ends: list[float] = []

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.starts.append(time.perf_counter())

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            self.ends.append(time.perf_counter())

    clock = Clock()
    args = TrainingArguments(
        output_dir=str(HERE / "out" / "recipe"),
        per_device_train_batch_size=batch_size,
        max_steps=steps + 1,
        learning_rate=2e-4,
        logging_steps=1000,
        save_strategy="no",
        report_to=[],
        bf16=dtype == torch.bfloat16,
        use_cpu=True,
        optim="adamw_torch",
        gradient_checkpointing=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        remove_unused_columns=False,
        seed=0,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    tokens: list[int] = []
    original = collator.__call__

    def counting(features: list[dict[str, Any]]) -> Any:
        batch = original(features)
        tokens.append(int(batch["attention_mask"].sum()))
        return batch

    collator.__call__ = counting  # type: ignore[method-assign]
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=lambda f: counting(f),
        callbacks=[clock],
    )
    trainer.train()
    timed = [end - start for start, end in zip(clock.starts[1:], clock.ends[1:], strict=True)]
    return {
        "tokens": sum(tokens[1 : steps + 1]),
        "seconds": sum(timed),
        "compute_dtype": str(dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--worker", choices=CONTENDERS)
    parser.add_argument("--base-dir", type=Path)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.worker, args.base_dir, args.steps, args.batch_size)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(result))
        return

    from loraledger.trainer.base_models import convert_embedded

    base_dir, _ = convert_embedded()
    peak = gemm_flops()
    results: dict[str, dict[str, Any]] = {}
    for name in CONTENDERS:
        started = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--base-dir",
                str(base_dir),
                "--steps",
                str(args.steps),
                "--batch-size",
                str(args.batch_size),
            ],
            capture_output=True,
            text=True,
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            sys.exit(f"{name} failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
        results[name] = json.loads(line.removeprefix("RESULT "))
        results[name]["wall_s"] = time.perf_counter() - started

    print(
        f"float32 GEMM peak (2048^3, same run): {peak / 1e9:.1f} GFLOP/s; "
        f"{args.steps} timed steps of batch {args.batch_size} after one warm-up step"
    )
    print(f"{'contender':<18}{'compute':>10}{'tok/s':>10}{'peak RSS':>12}{'MFU':>8}")
    for name, r in results.items():
        r["tokens_per_second"] = r["tokens"] / r["seconds"]
        r["mfu"] = 6 * r["parameters"] * r["tokens_per_second"] / peak
        print(
            f"{name:<18}{r['compute_dtype']:>10}{r['tokens_per_second']:>10.1f}"
            f"{r['peak_rss_mib']:>9.0f} MiB{r['mfu']:>8.0%}"
        )
    ours = results["loraledger"]
    best = max(
        (results[n] for n in CONTENDERS if n.startswith("recipe")),
        key=lambda r: r["tokens_per_second"],
    )
    for name in OURS:
        mine = results[name]
        mine["ratio_vs_best_recipe"] = mine["tokens_per_second"] / best["tokens_per_second"]
        mine["memory_vs_best_recipe"] = mine["peak_rss_mib"] / best["peak_rss_mib"]
        print(
            f"{name} vs best recipe: {mine['ratio_vs_best_recipe']:.2f}x tokens/s (target >= "
            f"1.3x), {mine['memory_vs_best_recipe']:.2f}x peak RSS (target <= 1.0x), MFU "
            f"{mine['mfu']:.0%} (target >= 50%)"
        )
    ratio = ours["ratio_vs_best_recipe"]
    memory = ours["memory_vs_best_recipe"]
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_trainer.json").write_text(
        json.dumps(
            {
                "gemm_flops": peak,
                "steps": args.steps,
                "batch_size": args.batch_size,
                "results": results,
                "ratio_vs_best_recipe": ratio,
                "memory_vs_best_recipe": memory,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
