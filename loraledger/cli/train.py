"""``loraledger train``: QLoRA training with provenance, registered and signed at the end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ._app import emit_json, settings


def train(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Training config (YAML); see docs/training.md."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
    allow_dirty: bool = typer.Option(
        False,
        "--allow-dirty",
        help="Train from a source tree with uncommitted changes (recorded in the training run).",
    ),
    compute_dtype: str = typer.Option(
        None,
        "--compute-dtype",
        help="float32, bfloat16 or float16, overriding the config's compute_dtype (auto: "
        "timed on the real training step; the decision is recorded in the training run).",
    ),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a LoRA/QLoRA adapter and register it with its full provenance."""
    from loraledger.trainer.train import train as run_training

    opts = settings(ctx)
    registry = opts.open()
    with _Progress(quiet=json_) as on_step:
        result = run_training(
            registry,
            config,
            actor=opts.actor,
            resume=resume,
            allow_dirty=allow_dirty,
            on_step=on_step,
            dtype=compute_dtype,
        )
    if json_:
        emit_json({"adapter": result.version, "training_run": result.run})
        return
    run = result.run
    first, last = run.loss_curve[0].loss, run.loss_curve[-1].loss
    typer.echo(f"Registered {result.version.ref}")
    typer.echo(f"  digest sha256:{result.version.digest}, signed by {result.version.signer}")
    typer.echo(
        f"  {run.steps} steps, {run.tokens_seen} tokens, {run.wall_seconds:.1f} s "
        f"({run.tokens_seen / max(run.wall_seconds, 1e-9):.0f} tok/s), loss {first:.3f} "
        f"-> {last:.3f}"
    )
    typer.echo(
        f"  base {run.base_ref}, {run.quantization.method} quantization, "
        f"{run.compute_dtype} compute, training run {run.id}"
    )


class _Progress:
    """A rich progress bar on a terminal, a line every 10 steps otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Any:
        if self.quiet:
            return None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("training"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.3f}  {task.fields[tps]:.0f} tok/s"),
                console=Console(stderr=True),
            )
            self.bar.start()
        return self.report

    def report(self, step: Any) -> None:
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("train", total=step.total, loss=0.0, tps=0.0)
            self.bar.update(
                self.task, completed=step.step, loss=step.loss, tps=step.tokens_per_second
            )
        elif step.step % 10 == 0 or step.step == step.total:
            typer.echo(
                f"step {step.step}/{step.total}  loss {step.loss:.4f}  "
                f"{step.tokens_per_second:.0f} tok/s",
                err=True,
            )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def ask(
    ctx: typer.Context,
    questions: list[str] = typer.Argument(..., help="One or more questions."),
    adapter: str = typer.Option(None, "--adapter", help="Adapter version to answer with."),
    served: Path = typer.Option(
        None,
        "--served",
        help="Ask the llama.cpp server `loraledger serve --dir DIR` started, after checking "
        "it serves what its environment runs.",
    ),
    base: str = typer.Option(None, "--base", help="Base model [the adapter's own base]."),
    system: str = typer.Option(None, "--system", help="A system prompt."),
    max_new_tokens: int = typer.Option(48, "--max-new-tokens", min=1, max=32768),
    json_: bool = typer.Option(False, "--json", help="Print the answers as JSON."),
) -> None:
    """Ask a base model, with or without a verified adapter, greedy and repeatable."""
    if served is not None:
        from loraledger.errors import UsageError
        from loraledger.policies.llama_server import ask_served

        if adapter or base:
            raise UsageError("--served asks what the server runs; give no --adapter or --base")
        what, answers = ask_served(
            settings(ctx).open(), served, questions, system=system, max_tokens=max_new_tokens
        )
        shown = f"(llama.cpp at {what.url}, serving {what.adapter} of {what.environment})"
        typer.echo(shown + "\n", err=True)
    else:
        from loraledger.trainer.inference import ask as run_ask

        answers = run_ask(
            settings(ctx).open(),
            questions,
            adapter=adapter,
            base=base,
            system=system,
            max_new_tokens=max_new_tokens,
        )
    if json_:
        emit_json([{"question": q, "answer": a} for q, a in zip(questions, answers, strict=True)])
        return
    for question, answer in zip(questions, answers, strict=True):
        typer.echo(f"Q: {question}\nA: {answer}\n")
