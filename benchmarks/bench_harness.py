"""Evaluation speed: `loraledger eval` of N adapter versions against N `lm_eval` runs.

One run, same machine, same suite (``northwind-policy`` by default: generation-heavy),
same base (the embedded SmolLM2-135M-Instruct) and the same N adapters (4 by default) --
real ones, trained by the trainer for a few steps with different seeds (plain LoRA, so
that plain `lm_eval` loads the base exactly as LoRA Ledger does), same batch size and seed:

* ``loraledger``: ``loraledger eval A1 .. AN --suite S`` -- one process, one base load,
  every adapter verified before use;
* ``lm_eval xN``: ``lm_eval --model hf --model_args pretrained=BASE,peft=ADAPTER_i
  --include_path S ...`` N times, one process each, on fetched (verified) copies.

``--with-base`` adds the bare base as one more subject on both sides (one more
``lm_eval`` run, without ``peft``): ``--adapters 1 --with-base`` is a release's policy
evidence, one adapter and the base it is compared with, on the whole suite.

Printed: wall time of each, the speed-up (target >= 2.5x at 4 adapters) and peak RSS
(largest single process for lm_eval; target <= 1.3x). Setup (registry, base conversion,
training) is not timed. ``--quick``: 1 adapter trained one step and the base, 2 documents
a task.

    .venv/bin/python benchmarks/bench_harness.py [--adapters 4] [--with-base]
        [--suite northwind-policy] [--limit N] [--batch-size 8] [--work DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import add_arguments, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Runs a module as __main__ and prints its peak RSS: the same measurement for both sides.
MEASURED = (
    "import resource, runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module(sys.argv[0], run_name='__main__')\n"
    "except SystemExit as exit:\n"
    "    if exit.code not in (0, None): raise\n"
    "finally:\n"
    "    print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
    "file=sys.stderr)\n"
)


def run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of ``python -m command...``."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    peak = next(
        int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS")
    )
    return elapsed, peak


def setup(work: Path, env: dict[str, str], adapters: int, steps: int) -> list[str]:
    """A registry with the embedded base and ``adapters`` plain-LoRA adapters trained
    ``steps`` steps each."""
    import yaml

    def ledger(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "loraledger", *args], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            sys.exit(f"loraledger {' '.join(args)} failed:\n{done.stderr[-3000:]}")

    ledger("init")
    ledger("keys", "create", "admin", "--role", "admin")
    ledger("--as", "admin", "keys", "create", "eve", "--role", "engineer")
    ledger("--as", "eve", "base", "add")
    demo = ROOT / "trainer" / "demo"
    ledger(
        "--as", "eve", "data", "add", str(demo / "northwind_bank_support.jsonl"),
        "--name", "northwind-support", "--source", "demo", "--license", "CC-BY-4.0",
    )  # fmt: skip
    config = yaml.safe_load((demo / "train.yaml").read_text())
    refs = []
    for seed in range(1, adapters + 1):
        config.update(
            adapter_name="bench",
            datasets=["northwind-support"],  # the one registered above
            quantization="none",
            max_steps=steps,
            seed=seed,
            warmup_steps=0,
            checkpoint_every=0,
        )
        path = work / f"train-{seed}.yaml"
        path.write_text(yaml.safe_dump(config))
        ledger("--as", "eve", "train", str(path), "--allow-dirty")
        refs.append(f"bench@v{seed}")
    return refs


def suite_size(suite: Any, limit: int | None) -> int:
    """The samples a run of ``suite`` scores: each task's test lines, capped at ``limit``."""
    total = 0
    for task in suite.tasks:
        path = suite.directory / task.data_files.get("test", next(iter(task.data_files.values())))
        lines = sum(1 for line in path.open() if line.strip())
        total += min(lines, limit) if limit else lines
    return total


def main() -> None:
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--adapters", type=int, default=4)
    parser.add_argument("--suite", default="northwind-policy")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--with-base", action="store_true", help="Evaluate the bare base too, on both sides."
    )
    parser.add_argument(
        "--work", type=Path, help="Reuse the registry a previous run left in this folder."
    )
    args = parser.parse_args()
    steps = 3
    if args.quick:
        args.adapters, args.limit, steps, args.with_base = 1, args.limit or 2, 1, True

    from loraledger.harness.suites import find_suite

    work = args.work or Path(tempfile.mkdtemp(prefix="loraledger-bench-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "LORALEDGER_REGISTRY": str(work / "registry"),
        "LORALEDGER_KEYS_DIR": str(work / "keys"),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "TQDM_DISABLE": "1",
    }
    if (work / "registry").is_dir():
        refs = [f"bench@v{i}" for i in range(1, args.adapters + 1)]
    else:
        print(
            f"setting up: registry, embedded base, {args.adapters} trained adapters (not timed)",
            flush=True,
        )
        refs = setup(work, env, args.adapters, steps)
    print(f"work folder {work} (reuse it with --work)", flush=True)
    suite = find_suite(args.suite)
    limit = ["--limit", str(args.limit)] if args.limit else []
    common = ["--batch-size", str(args.batch_size), "--seed", "1234", *limit]

    subjects = [*refs, *(["base:smollm2-135m-instruct"] if args.with_base else [])]
    ours_s, ours_kib = run(
        ["loraledger", "--as", "eve", "eval", *subjects, "--suite", suite.name, *common], env
    )

    from loraledger.registry import Registry
    from loraledger.registry.keys import KeyStore

    registry = Registry.open(work / "registry", keys=KeyStore(work / "keys"))
    base = registry.base_models.get("smollm2-135m-instruct").location
    chat = ["--apply_chat_template"] if suite.apply_chat_template else []
    if suite.system_instruction:
        chat += ["--system_instruction", suite.system_instruction]
    theirs_s, theirs_kib = 0.0, 0
    for ref in subjects:
        peft = ""
        if not ref.startswith("base:"):
            adapter = work / "fetched" / ref
            if not adapter.is_dir():
                registry.adapters.fetch(ref, adapter)
            peft = f",peft={adapter}"
        seconds, kib = run(
            [
                "lm_eval", "--model", "hf",
                "--model_args", f"pretrained={base}{peft},dtype=float32",
                "--include_path", ".", "--tasks", suite.name, *chat,
                "--batch_size", str(args.batch_size), "--device", "cpu", "--seed", "1234",
                *limit,
            ],
            env,
            cwd=suite.directory,
        )  # fmt: skip
        theirs_s += seconds
        theirs_kib = max(theirs_kib, kib)

    speedup = theirs_s / ours_s
    memory = ours_kib / theirs_kib
    n = args.adapters
    samples = suite_size(suite, args.limit)
    with_base = " and the base" if args.with_base else ""
    print(f"suite {suite.name} ({samples} samples), {n} adapters{with_base}, batch "
          f"{args.batch_size}")  # fmt: skip
    print(f"{'':<16}{'wall s':>10}{'peak RSS':>14}")
    print(f"{'loraledger eval':<16}{ours_s:>10.1f}{ours_kib / 1024:>10.0f} MiB")
    print(f"{f'lm_eval x{len(subjects)}':<16}{theirs_s:>10.1f}{theirs_kib / 1024:>10.0f} MiB")
    print(
        f"speed-up {speedup:.2f}x (target >= 2.5x at 4 adapters); peak RSS {memory:.2f}x one "
        "lm_eval process (target <= 1.3x)"
    )
    result: dict[str, Any] = {
        "suite": suite.name,
        "adapters": n,
        "with_base": args.with_base,
        "samples": samples,
        "limit": args.limit,
        "batch_size": args.batch_size,
        "loraledger_seconds": ours_s,
        "lm_eval_seconds": theirs_s,
        "speedup": speedup,
        "loraledger_peak_rss_kib": ours_kib,
        "lm_eval_peak_rss_kib": theirs_kib,
        "peak_rss_vs_one_lm_eval": memory,
    }
    write_results("bench_harness", args, result)


if __name__ == "__main__":
    main()
