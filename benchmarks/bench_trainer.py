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
* ``loraledger-ckpt`` -- this trainer with ``gradient_checkpointing: true``;
* ``loraledger-micro2@float32`` (and ``@bfloat16`` where the CPU has bfloat16
  instructions) -- ``micro_batch_size`` 2 with the compute dtype forced, so both dtypes
  are reported on a CPU that has both.

Printed: tokens/s (timed steps only, after one warm-up step), peak RSS, the ratio of this
trainer's tokens/s to the best recipe's, and model FLOPs utilization: 6 x parameters x
tokens/s (the usual "model FLOPs" convention; LoRA skips the frozen weights' gradients, so
the hardware does less) over the GEMM rate of the contender's own compute dtype, measured
in the same run. Targets: >= 1.6x the best recipe's tokens/s at <= 0.9x its peak RSS in
one configuration -- on this CPU, and among the float32 contenders against the float32
recipe (what a CPU without bfloat16 runs). ``--quick``: one timed step of batch 2, on the
tests' tiny random Llama (2 layers, SmolLM2's tokenizer): every path runs, in seconds; its
numbers say nothing of SmolLM2.

    .venv/bin/python benchmarks/bench_trainer.py [--steps 4] [--batch-size 8] [--rounds 3]
        [--contenders loraledger-micro2@bfloat16,recipe-bf16] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import add_arguments, write_results
from loraledger.trainer.compute_dtype import FORCE_ENV, cpu_bf16_flags

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "trainer" / "demo" / "northwind_bank_support.jsonl"
FORCED = ("float32", "bfloat16") if cpu_bf16_flags() else ("float32",)
OURS = (
    "loraledger",
    "loraledger-micro2",
    "loraledger-micro4",
    "loraledger-ckpt",
    *(f"loraledger-micro2@{dtype}" for dtype in FORCED),
)
CONTENDERS = (*OURS, "recipe-bf16", "recipe-fp32")
# --quick runs every code path once: the dtype measured (plain), gradient checkpointing
# with the dtype forced (no second measurement), both recipes. (Micro-batches are the
# same path with another number; the demo's training and tests/trainer run them.)
QUICK = ("loraledger", "loraledger-ckpt@float32", "recipe-bf16", "recipe-fp32")


def gemm_flops(dtype_name: str) -> float:
    """The median rate of a 2048^3 matrix product in ``dtype_name`` on this CPU."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
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

    name, _, forced = name.partition("@")
    if forced:
        os.environ[FORCE_ENV] = forced  # as a user forces it (docs/training.md)
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
        output_dir=tempfile.mkdtemp(prefix="bench-recipe-"),  # it saves nothing
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


def run_worker(name: str, base_dir: Path, steps: int, batch_size: int) -> dict[str, Any]:
    """One contender in a process of its own (its peak RSS is its own)."""
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
            str(steps),
            "--batch-size",
            str(batch_size),
        ],
        capture_output=True,
        text=True,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"{name} failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["wall_s"] = time.perf_counter() - started
    result["tokens_per_second"] = result["tokens"] / result["seconds"]
    return result


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A contender's runs as one: the median tokens/s and the median peak RSS."""
    first = runs[0]
    return {
        "compute_dtype": first["compute_dtype"],
        "parameters": first["parameters"],
        "tokens_per_second": statistics.median(r["tokens_per_second"] for r in runs),
        "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
        "runs": runs,
    }


def main() -> None:
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--worker", choices=sorted({*CONTENDERS, *QUICK}))
    parser.add_argument("--base-dir", type=Path)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every contender this many times, interleaved; report the medians",
    )
    parser.add_argument(
        "--contenders",
        type=lambda text: text.split(","),
        help=f"a comma-separated subset (default: all): {','.join(CONTENDERS)}",
    )
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size = 1, 2
    if args.worker:
        result = worker(args.worker, args.base_dir, args.steps, args.batch_size)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(result))
        return

    from loraledger.trainer.base_models import cache_dir, convert_embedded

    if args.quick:  # every path once, on the tests' tiny Llama (SmolLM2's tokenizer): seconds
        from tests.trainer.conftest import build_tiny_base

        base_dir = cache_dir() / "test-bases" / "tiny-llama-v1"
        if not (base_dir / "config.json").is_file():
            base_dir.parent.mkdir(parents=True, exist_ok=True)
            build_tiny_base(base_dir)
    else:
        base_dir, _ = convert_embedded()
    peaks = {dtype: gemm_flops(dtype) for dtype in ("float32", "bfloat16")}
    contenders = args.contenders or (QUICK if args.quick else CONTENDERS)
    unknown = sorted(set(contenders) - {*CONTENDERS, *QUICK})
    if unknown:
        parser.error(f"--contenders: unknown {', '.join(unknown)}; choose from {CONTENDERS}")
    ours = [name for name in contenders if name.startswith("loraledger")]
    recipes = [name for name in contenders if name.startswith("recipe")]
    if not recipes:
        parser.error("--contenders: name at least one recipe (the ratios are against the best)")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    for _ in range(args.rounds):  # interleaved: a slow spell of the machine hits every one
        for name in contenders:
            runs[name].append(run_worker(name, base_dir, args.steps, args.batch_size))
    results = {name: summary(each) for name, each in runs.items()}

    print(
        "GEMM peaks (2048^3, same run): "
        + ", ".join(f"{d} {p / 1e9:.1f} GFLOP/s" for d, p in peaks.items())
        + f"; {args.steps} timed steps of batch {args.batch_size} after one warm-up step"
        + (f", median of {args.rounds} interleaved runs" if args.rounds > 1 else "")
    )
    print(f"{'contender':<28}{'compute':>10}{'tok/s':>10}{'peak RSS':>12}{'MFU':>8}")
    for name, r in results.items():
        r["gemm_peak_flops"] = peaks.get(r["compute_dtype"], peaks["float32"])
        r["mfu"] = 6 * r["parameters"] * r["tokens_per_second"] / r["gemm_peak_flops"]
        print(
            f"{name:<28}{r['compute_dtype']:>10}{r['tokens_per_second']:>10.1f}"
            f"{r['peak_rss_mib']:>9.0f} MiB{r['mfu']:>8.0%}"
        )
    best = max(
        (results[n] for n in recipes),
        key=lambda r: r["tokens_per_second"],
    )
    for name in ours:
        mine = results[name]
        mine["ratio_vs_best_recipe"] = mine["tokens_per_second"] / best["tokens_per_second"]
        mine["memory_vs_best_recipe"] = mine["peak_rss_mib"] / best["peak_rss_mib"]
        mine["meets_target"] = (
            mine["ratio_vs_best_recipe"] >= 1.6 and mine["memory_vs_best_recipe"] <= 0.9
        )
        print(
            f"{name} vs best recipe: {mine['ratio_vs_best_recipe']:.2f}x tokens/s, "
            f"{mine['memory_vs_best_recipe']:.2f}x peak RSS (target >= 1.6x at <= 0.9x: "
            f"{'met' if mine['meets_target'] else 'not met'}), MFU {mine['mfu']:.0%} of its "
            f"dtype's GEMM peak"
        )
    # On a CPU without bfloat16 only float32 runs (bfloat16 is emulated, 10-100x slower):
    # there the float32 configurations meet the float32 recipe.
    float32_only: dict[str, dict[str, Any]] = {}
    if "recipe-fp32" in results:
        peer = results["recipe-fp32"]
        for name in ours:
            mine = results[name]
            if mine["compute_dtype"] != "float32":
                continue
            speed = mine["tokens_per_second"] / peer["tokens_per_second"]
            memory = mine["peak_rss_mib"] / peer["peak_rss_mib"]
            float32_only[name] = {
                "ratio": speed,
                "memory": memory,
                "meets_target": speed >= 1.6 and memory <= 0.9,
            }
            print(
                f"float32 only (a CPU without bfloat16): {name} vs recipe-fp32: {speed:.2f}x "
                f"tokens/s, {memory:.2f}x peak RSS "
                f"({'met' if float32_only[name]['meets_target'] else 'not met'})"
            )
    write_results(
        "bench_trainer",
        args,
        {
            "float32_only": float32_only,
            "float32_only_met_by": [n for n, r in float32_only.items() if r["meets_target"]],
            "gemm_peak_flops": peaks,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "contenders": results,
            "best_recipe": max(
                recipes,
                key=lambda n: results[n]["tokens_per_second"],
            ),
            "met_by": [n for n in ours if results[n]["meets_target"]],
        },
    )


if __name__ == "__main__":
    main()
