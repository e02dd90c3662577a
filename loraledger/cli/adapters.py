"""``loraledger adapters``: register, inspect, verify and fetch adapter versions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ._app import JSON_OPTION, console, emit_json, emit_table, human_bytes, new_app, settings

if TYPE_CHECKING:
    from loraledger.registry import AdapterVersion, Registry
    from loraledger.registry.adapter_dir import Limits

app = new_app("Signed, immutable adapter versions.")


@app.command()
def register(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A PEFT adapter directory (safetensors)."),
    name: str = typer.Option(..., "--name", help="Adapter name; versions count up per name."),
    max_files: int = typer.Option(1000, "--max-files", min=1, help="Most files accepted."),
    max_file_bytes: int = typer.Option(
        2**30, "--max-file-bytes", min=1, help="Largest file accepted (bytes)."
    ),
    max_total_bytes: int = typer.Option(
        4 * 2**30, "--max-total-bytes", min=1, help="Most bytes accepted in all."
    ),
    link: bool = typer.Option(
        False,
        "--link",
        help="Hard-link the files into the store instead of copying them (same file system): "
        "only for a directory nothing will write again; its files become read-only.",
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Validate, hash, sign (OpenSSF model-signing) and store a new adapter version."""
    from loraledger.registry.adapter_dir import Limits

    opts = settings(ctx)
    registry = opts.open()
    limits = Limits(max_files, max_file_bytes, max_total_bytes)
    if json_ or not sys.stderr.isatty():
        version = registry.adapters.register(
            directory, name, actor=opts.actor, limits=limits, link=link
        )
    else:
        version = _register_with_progress(registry, directory, name, opts.actor, limits, link)
    if json_:
        emit_json(version)
        return
    typer.echo(f"Registered {version.ref}")
    typer.echo(
        f"  digest sha256:{version.digest}  {version.file_count} files, "
        f"{human_bytes(version.total_bytes)}, signed by {version.signer}"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    name: str = typer.Option(None, "--name", help="Only versions of this adapter."),
    json_: bool = JSON_OPTION,
) -> None:
    """List adapter versions."""
    versions = settings(ctx).open().adapters.list(name)
    if json_:
        emit_json(versions)
        return
    emit_table(
        ("ref", "digest", "files", "size", "signer", "base", "registered (UTC)"),
        (
            (
                v.ref,
                v.digest[:16],
                str(v.file_count),
                human_bytes(v.total_bytes),
                v.signer,
                v.base_model_name or "",
                f"{v.created_at:%Y-%m-%d %H:%M}",
            )
            for v in versions
        ),
    )


@app.command()
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@latest."),
    json_: bool = JSON_OPTION,
) -> None:
    """Show one version: digest, signer, configuration and files."""
    version = settings(ctx).open().adapters.get(ref)
    if json_:
        emit_json(version)
        return
    out = console()
    out.print(f"{version.ref}")
    for label, value in (
        ("digest", f"sha256:{version.digest}"),
        ("peft type", version.peft_type),
        ("base model", version.base_model_name or "(not recorded)"),
        ("signed by", f"{version.signer} (key {version.signer_key_fingerprint[:16]})"),
        ("registered", f"{version.created_at:%Y-%m-%d %H:%M:%S} UTC by {version.created_by}"),
        ("source", version.source_path),
        ("signature", f"{version.signature_id} (bundle sha256:{version.bundle_sha256[:16]})"),
    ):
        out.print(f"  {label + ':':<12}{value}")
    emit_table(
        ("file", "sha256", "size"),
        ((f.path, f.sha256, human_bytes(f.size_bytes)) for f in version.files),
    )


@app.command()
def lineage(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@latest."),
    json_: bool = JSON_OPTION,
) -> None:
    """Where a version came from: its training run (base, data, code, config, hardware)."""
    registry = settings(ctx).open()
    version = registry.adapters.get(ref)
    run = registry.adapters.training_run(version.ref)
    if json_:
        emit_json({"adapter": version.ref, "digest": version.digest, "training_run": run})
        return
    if run is None:
        typer.echo(
            f"{version.ref} was registered from {version.source_path}, not trained by "
            "LoRA Ledger: no training run is recorded"
        )
        return
    out = console()
    out.print(f"{version.ref}  sha256:{version.digest}", markup=False)
    code = run.code
    for label, value in (
        (
            "training run",
            f"{run.id} by {run.actor}, {run.started_at:%Y-%m-%d %H:%M} → "
            f"{run.finished_at:%H:%M} UTC",
        ),
        ("base", f"{run.base_ref} sha256:{run.base_digest}"),
        *(
            ("dataset", f"{d.ref}: {d.records} records, merkle root {d.merkle_root}")
            for d in run.datasets
        ),
        (
            "code",
            f"{code.repository} at {code.commit}{' (dirty, allowed)' if code.dirty else ''}",
        ),
        ("config", f"sha256:{run.config_sha256}"),
        ("quantization", ", ".join(f"{k}={v}" for k, v in run.quantization.model_dump().items())),
        ("compute", f"{run.compute_dtype} on {run.device}: {run.compute_dtype_reason}"),
        ("seed", str(run.seed)),
        (
            "training",
            f"{run.steps} steps, {run.tokens_seen} tokens, {run.wall_seconds:.1f} s, "
            f"loss {run.loss_curve[0].loss:.4f} -> {run.loss_curve[-1].loss:.4f}",
        ),
        ("libraries", ", ".join(f"{k} {v}" for k, v in sorted(run.libraries.items()))),
        ("hardware", ", ".join(f"{k}={v}" for k, v in run.hardware.model_dump().items())),
    ):
        out.print(f"  {label + ':':<14}{value}", markup=False)


@app.command()
def verify(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@latest."),
    json_: bool = JSON_OPTION,
) -> None:
    """Re-hash the stored files and check the signature against the signer's key."""
    report = settings(ctx).open().adapters.verify(ref)
    if json_:
        emit_json(report)
        return
    typer.echo(
        f"Verified {report.ref}: {report.files_verified} files, "
        f"{human_bytes(report.bytes_verified)}, digest sha256:{report.digest}, signed by "
        f"{report.signer}"
    )


@app.command()
def fetch(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@latest."),
    dest: Path = typer.Argument(..., help="New or empty directory to write the adapter to."),
) -> None:
    """Write a verified copy of the version's directory (nothing is written if it fails)."""
    report = settings(ctx).open().adapters.fetch(ref, dest)
    typer.echo(f"Fetched {report.ref} to {dest} (verified, digest sha256:{report.digest})")


@app.command()
def signature(
    ctx: typer.Context, ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@latest.")
) -> None:
    """Print the version's OpenSSF model-signing bundle (JSON)."""
    typer.echo(settings(ctx).open().adapters.signature(ref).decode("utf-8"), nl=False)


def _register_with_progress(
    registry: Registry,
    directory: Path,
    name: str,
    actor: str | None,
    limits: Limits,
    link: bool,
) -> AdapterVersion:
    """Register with a progress bar on stderr: copying and hashing, then signing."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    total = sum(
        p.lstat().st_size for p in directory.rglob("*") if p.is_file() and not p.is_symlink()
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("copying and hashing", total=total or None)

        def advance(count: int) -> None:
            progress.advance(task, count)
            if progress.tasks[task].completed >= total:
                progress.update(task, description="signing")

        return registry.adapters.register(
            directory, name, actor=actor, on_bytes=advance, limits=limits, link=link
        )
