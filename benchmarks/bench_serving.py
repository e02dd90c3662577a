"""Serving with llama.cpp: how long from a promotion to the server answering with the new
adapter, and how fast llama-server generates with the adapter against `loraledger ask`.

Set-up: a registry on the embedded SmolLM2-135M base with two adapters of SmolLM2's
shape (random, r=8 on q_proj and o_proj of all 30 layers, recorded as trained with NF4
and double quantization like the demo's), v1 deployed and served by `serve`'s supervisor
(polling every second, as the demo runs it).

1. **promote to answering**: v2's deployment is recorded (a reviewer's signed record, what
   `promote` writes once the gate passes) and the clock runs until the server answers
   with v2 loaded: the supervisor noticing the change (up to one poll), verifying every
   link of the trace, copying and checking the files, converting the adapter to GGUF and
   recording its derivation, and restarting llama-server. Measured twice: a new version
   (converted) and a rollback to v1 (its GGUF reused under its derivation).
2. **tokens per second**, the same prompts and the same number of new tokens, greedy:
   llama-server with the adapter (its Q4_1 base, the CPU's threads) against `loraledger
   ask` (transformers, the NF4 base as trained, peft), the latter with and without its
   model load. ``llama_vs_ask`` is the ratio of the two generation rates in this run.
3. **the cost of ``--no-repack``** (issue #34): the bare base, no adapter, served with
   llama.cpp's extra CPU buffer types (AMX on Intel Xeons that have it, the repacked
   layouts) and without them, as `serve` runs it so that an adapter never meets them (on
   an AMX CPU it crashed llama-server). ``no_repack_vs_repack`` is the ratio of the two
   generation rates (each the best of three runs, alternated); ``cpu_has_amx`` says
   whether this CPU could have used AMX.

Quick mode: one prompt, 8 new tokens, one promotion, llama-server on one thread.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import add_arguments, write_results

PROMPTS = [
    "What is the capital of France?",
    "Explain what an overdraft is in one sentence.",
    "Give me three tips for saving money.",
    "What does a bank's daily ATM limit mean?",
    "Write a short greeting for a customer.",
    "What is compound interest?",
    "How do I report a lost card?",
    "Summarise what a savings account is.",
]
NF4 = {"method": "nf4", "double_quant": True, "library": "bitsandbytes", "load_in_4bit": True}


def build(root: Path) -> Any:
    from loraledger.registry import Registry, Role
    from loraledger.registry.audit import utcnow
    from loraledger.registry.keys import KeyStore
    from loraledger.registry.models import LossPoint, TrainingRun
    from loraledger.registry.synthetic import write_lora_adapter
    from loraledger.trainer.base_models import add_base

    reg = Registry.init(root / "reg", keys=KeyStore(root / "keys"))
    reg.identities.create("admin", Role.ADMIN, actor=None)
    reg.identities.create("engineer", Role.ENGINEER, actor="admin")
    reg.identities.create("reviewer", Role.REVIEWER, actor="admin")
    base = add_base(reg, name=None, directory=None, actor="engineer")
    for seed in (1, 2):
        adapter = write_lora_adapter(
            root / f"a{seed}", base_model=base.ref, hidden=576, layers=30,
            targets=("q_proj", "o_proj"), seed=seed, scale=0.05,
        )  # fmt: skip
        now = utcnow()
        run = TrainingRun(
            id=str(uuid.uuid4()), config={"seed": seed}, config_sha256="0" * 64,
            base_ref=base.ref, base_digest=base.digest, datasets=(), quantization=NF4,
            compute_dtype="float32", compute_dtype_reason="benchmark", device="cpu",
            code={"repository": "benchmark", "commit": None, "dirty": False}, libraries={},
            hardware={}, seed=seed,
            loss_curve=(LossPoint(step=1, loss=1.0, learning_rate=1e-3, tokens=1),),
            steps=1, tokens_seen=1, wall_seconds=1.0, started_at=now - timedelta(seconds=1),
            finished_at=now, actor="engineer",
        )  # fmt: skip
        reg.adapters.register(adapter, "bot", actor="engineer", training_run=run)
    return reg


def deploy(reg: Any, ref: str, action: str = "promote") -> None:
    from loraledger.registry import Role
    from loraledger.registry.audit import utcnow
    from loraledger.registry.models import Deployment

    version = reg.adapters.get(ref)
    current = reg.deployments.current("prod")
    reg.deployments.record(
        Deployment(
            id=str(uuid.uuid4()), seq=0, environment="prod", adapter=version.ref,
            artifact_digest=version.digest, action=action, reason="benchmark",
            gate_check_id=None, approval_ids=(), policy_sha256=None, created_at=utcnow(),
            created_by="reviewer",
        ),
        reg.act_as("reviewer"), {Role.REVIEWER}, after_seq=current.seq if current else 0,
    )  # fmt: skip


class Watch:
    """The supervisor in a thread; each server it starts, with when."""

    def __init__(self, reg: Any, directory: Path, port: int, threads: int | None) -> None:
        from loraledger.policies import llama_server

        self.started: list[tuple[float, Any]] = []
        self.ready = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=llama_server.serve,
            args=(reg, "prod", directory),
            kwargs={
                "actor": "engineer",
                "port": port,
                "poll": 1.0,
                "threads": threads,
                "stop": self.stop,
                "report": self._report,
                "on_start": self._started,
            },
        )
        self.thread.start()

    @staticmethod
    def _report(line: str) -> None:
        print("  serve:", line, flush=True)

    def _started(self, server: Any) -> None:
        with self.ready:
            self.started.append((time.perf_counter(), server))
            self.ready.notify_all()

    def next_server(self, count: int) -> tuple[float, Any]:
        with self.ready:
            assert self.ready.wait_for(lambda: len(self.started) >= count, timeout=600)
        return self.started[count - 1]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=120)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def switch(reg: Any, watch: Watch, ref: str, action: str, count: int) -> dict[str, float]:
    """Seconds from recording ``ref``'s deployment to the server answering with it."""
    question = [{"role": "user", "content": PROMPTS[0]}]
    began = time.perf_counter()
    deploy(reg, ref, action)
    started_at, server = watch.next_server(count)
    server.chat(question, max_tokens=1)
    answered = time.perf_counter()
    assert server.served.adapter == ref
    return {"to_started_s": started_at - began, "to_answer_s": answered - began}


def llama_rate(server: Any, prompts: list[str], tokens: int) -> dict[str, float]:
    generated, seconds = 0, 0.0
    for prompt in prompts:
        question = [{"role": "user", "content": prompt}]
        began = time.perf_counter()
        answer = server.complete(question, tokens, ignore_eos=True)
        seconds += time.perf_counter() - began
        generated += int(answer["usage"]["completion_tokens"])
    return {"tokens": generated, "seconds": seconds, "tokens_per_s": generated / seconds}


def base_rate(
    base_gguf: Path, options: list[str], prompts: list[str], tokens: int, threads: int | None
) -> dict[str, float]:
    """Generation rate of llama-server on the bare base, started with ``options``."""
    import json
    import subprocess
    import urllib.request

    from loraledger.policies import llama_cpp

    port = free_port()
    command = [str(llama_cpp.engine().server), "-m", str(base_gguf), "--host", "127.0.0.1",
               "--port", str(port), "-c", "2048", "--offline", "--no-webui", *options]  # fmt: skip
    if threads:
        command += ["--threads", str(threads)]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if json.loads(response.read()).get("status") == "ok":
                        break
            except OSError:
                time.sleep(0.2)
        generated, seconds, prompt_rates = 0, 0.0, []
        for prompt in prompts:
            body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": tokens,
                    "temperature": 0, "ignore_eos": True}  # fmt: skip
            request = urllib.request.Request(
                f"{url}/v1/chat/completions", data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            began = time.perf_counter()
            with urllib.request.urlopen(request, timeout=600) as response:
                answer = json.loads(response.read())
            seconds += time.perf_counter() - began
            generated += int(answer["usage"]["completion_tokens"])
            prompt_rates.append(float(answer["timings"]["prompt_per_second"]))
    finally:
        process.terminate()
        process.wait()
    return {
        "tokens": generated,
        "seconds": seconds,
        "tokens_per_s": generated / seconds,
        "prompt_tokens_per_s": statistics.mean(prompt_rates),  # llama-server's own timing
    }


def ask_rate(reg: Any, ref: str, prompts: list[str], tokens: int) -> dict[str, float]:
    import torch
    from loraledger.trainer.inference import load_verified

    began = time.perf_counter()
    model, tokenizer = load_verified(reg, adapter=ref)
    loaded = time.perf_counter() - began
    generated, seconds = 0, 0.0
    for prompt in prompts:  # as `ask` generates, with min_new_tokens like ignore_eos
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True,
            return_tensors="pt", return_dict=True,
        )  # fmt: skip
        began = time.perf_counter()
        with torch.no_grad():
            output = model.generate(
                **ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        seconds += time.perf_counter() - began
        generated += int(output.shape[1] - ids["input_ids"].shape[1])
    return {
        "tokens": generated,
        "seconds": seconds,
        "load_s": loaded,
        "tokens_per_s": generated / seconds,
        "tokens_per_s_with_load": generated / (seconds + loaded),
    }


def main() -> None:
    parser = add_arguments(argparse.ArgumentParser(description=__doc__))
    args = parser.parse_args()
    from loraledger.policies import llama_cpp

    prompts, tokens = (PROMPTS[:1], 8) if args.quick else (PROMPTS, 64)
    began = time.perf_counter()
    llama_cpp.engine()
    engine_s = time.perf_counter() - began
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        reg = build(root)
        # quick (in `make test`, beside other tests): one thread, as llama.cpp's threads
        # spin at their barriers on a busy machine; full: every core, llama.cpp's default
        watch = Watch(reg, root / "serving", free_port(), 1 if args.quick else None)
        try:
            first = switch(reg, watch, "bot@v1", "promote", 1)
            new = switch(reg, watch, "bot@v2", "promote", 2)
            results: dict[str, Any] = {"first_serve": first, "promote_new_version": new}
            if not args.quick:
                results["rollback_reused_gguf"] = switch(reg, watch, "bot@v1", "rollback", 3)
            _, server = watch.started[-1]
            llama = llama_rate(server, prompts, tokens)
        finally:
            watch.close()
        threads = 1 if args.quick else None
        base_gguf = Path(server.served.base_gguf)
        rounds: dict[str, list[dict[str, float]]] = {"repack": [], "no_repack": []}
        for _ in range(1 if args.quick else 3):  # alternated: neither gets the warmer turn
            for name, options in (("repack", []), ("no_repack", llama_cpp.SERVER_OPTIONS)):
                rate = base_rate(base_gguf, list(options), prompts, tokens, threads)
                rounds[name].append(rate)
        repack, no_repack = (max(runs, key=lambda r: r["tokens_per_s"]) for runs in rounds.values())
        ask = ask_rate(reg, server.served.adapter, prompts, tokens)
        results.update(
            engine_ready_s=engine_s,
            prompts=len(prompts),
            new_tokens=tokens,
            llama_server=llama,
            ask=ask,
            llama_vs_ask=llama["tokens_per_s"] / ask["tokens_per_s"],
            llama_vs_ask_with_load=llama["tokens_per_s"] / ask["tokens_per_s_with_load"],
            base_with_repack=repack,
            base_no_repack=no_repack,
            no_repack_vs_repack=no_repack["tokens_per_s"] / repack["tokens_per_s"],
            cpu_has_amx="amx_tile" in Path("/proc/cpuinfo").read_text(),
        )
        switches = [
            v["to_answer_s"] for k, v in results.items() if k.startswith(("promote", "roll"))
        ]
        results["promote_to_answer_median_s"] = statistics.median(switches)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"promote -> answering: {new['to_answer_s']:.1f} s; llama-server "
        f"{llama['tokens_per_s']:.1f} tokens/s vs ask {ask['tokens_per_s']:.1f} "
        f"({results['llama_vs_ask']:.1f}x); the bare base with --no-repack at "
        f"{results['no_repack_vs_repack']:.2f}x its rate with repacking "
        f"({'an AMX' if results['cpu_has_amx'] else 'no AMX'} CPU)"
    )
    write_results("bench_serving", args, results)


if __name__ == "__main__":
    main()
