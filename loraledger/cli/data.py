"""``loraledger data``: training datasets with content provenance."""

from __future__ import annotations

from pathlib import Path

import typer

from loraledger.errors import InputError
from loraledger.inputs import loads_json, read_text
from loraledger.terminal import printable

from ._app import JSON_OPTION, console, emit_json, emit_table, human_bytes, new_app, settings

app = new_app("Training datasets: validated, hashed to the record, scanned for PII.")


@app.command()
def add(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="JSONL file: chat or prompt/completion records."),
    name: str = typer.Option(..., "--name", help="Dataset name; versions count up per name."),
    source: str = typer.Option(..., "--source", help="Where the data came from."),
    license: str = typer.Option(..., "--license", help="SPDX expression, e.g. CC-BY-4.0."),
    max_line_bytes: int = typer.Option(
        1 << 20, "--max-line-bytes", min=1, help="Longest record line accepted."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Validate a dataset file and register it as a new immutable version."""
    from loraledger.trainer.datasets import add_dataset

    opts = settings(ctx)
    version = add_dataset(
        opts.open(),
        file,
        name=name,
        source=source,
        license=license,
        actor=opts.actor,
        max_line_bytes=max_line_bytes,
    )
    if json_:
        emit_json(version)
        return
    typer.echo(f"Registered {version.ref}")
    typer.echo(
        f"  {version.record_count} {version.format} records, {version.duplicate_count} "
        f"duplicates, merkle root {version.merkle_root}"
    )
    for kind, finding in sorted(version.pii.items()):
        lines = ", ".join(str(n) for n in finding.lines[:10])
        more = " …" if len(finding.lines) > 10 else ""
        typer.echo(f"  PII {kind}: {finding.count} on lines {lines}{more}")
    if version.git is None:
        typer.echo("  git: the file is not in a git work tree")
    else:
        state = (
            "untracked"
            if version.git.untracked
            else ("modified" if version.git.modified else "clean")
        )
        typer.echo(f"  git: {version.git.path} at {version.git.commit or '(no commit)'} ({state})")


@app.command("list")
def list_(
    ctx: typer.Context,
    name: str = typer.Option(None, "--name", help="Only versions of this dataset."),
    json_: bool = JSON_OPTION,
) -> None:
    """List dataset versions."""
    versions = settings(ctx).open().datasets.list(name)
    if json_:
        emit_json(versions)
        return
    emit_table(
        ("ref", "format", "records", "size", "license", "PII", "merkle root", "registered"),
        (
            (
                v.ref,
                v.format,
                str(v.record_count),
                human_bytes(v.size_bytes),
                v.license,
                ", ".join(f"{k} {f.count}" for k, f in sorted(v.pii.items())) or "none",
                v.merkle_root[:16],
                f"{v.created_at:%Y-%m-%d %H:%M} {v.created_by}",
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
    """Show one dataset version: provenance, PII findings by kind and line."""
    version = settings(ctx).open().datasets.get(ref)
    if json_:
        emit_json(version)
        return
    out = console()
    out.print(version.ref)
    for label, value in (
        (
            "file",
            f"{version.file_name} sha256:{version.file_sha256} ({human_bytes(version.size_bytes)})",
        ),
        (
            "records",
            f"{version.record_count} {version.format}, {version.duplicate_count} duplicates",
        ),
        ("merkle root", version.merkle_root),
        ("license", version.license),
        ("source", version.source),
        ("git", version.git.model_dump_json() if version.git else "(not in a git work tree)"),
        ("registered", f"{version.created_at:%Y-%m-%d %H:%M:%S} UTC by {version.created_by}"),
    ):
        out.print(f"  {label + ':':<13}{printable(value)}", markup=False)
    for kind, finding in sorted(version.pii.items()):
        out.print(
            f"  PII {kind}: {finding.count} on lines {', '.join(str(n) for n in finding.lines)}",
            markup=False,
        )


@app.command()
def verify(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@latest."),
    json_: bool = JSON_OPTION,
) -> None:
    """Re-hash the stored file and recompute the Merkle root from the record hashes."""
    version = settings(ctx).open().datasets.verify(ref)
    if json_:
        emit_json(version)
        return
    typer.echo(
        f"Verified {version.ref}: file sha256:{version.file_sha256}, "
        f"{version.record_count} records, merkle root {version.merkle_root}"
    )


@app.command()
def prove(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@vN or NAME@latest."),
    record: str = typer.Option(None, "--record", help="The record as JSON text."),
    record_file: Path = typer.Option(
        None, "--record-file", help="A file holding the record as JSON."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Prove whether a record was in a dataset version (RFC 9162 inclusion proof)."""
    from loraledger.registry.datasets import record_sha256

    parsed = _record(record, record_file)
    proof = settings(ctx).open().datasets.prove(ref, record_sha256(parsed))
    if json_:
        emit_json(proof)
        return
    typer.echo(
        f"The record (sha256 {proof.record_sha256}) is in {proof.dataset}: line {proof.line}, "
        f"leaf {proof.index} of {proof.size}; the inclusion proof verifies against merkle root "
        f"{proof.merkle_root}"
    )


@app.command()
def impact(
    ctx: typer.Context,
    record: str = typer.Option(None, "--record", help="The record as JSON text."),
    record_file: Path = typer.Option(
        None, "--record-file", help="A file holding the record as JSON."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Where a record went: dataset versions holding it, adapters trained on them, and the
    environments running one now (for a data-erasure request)."""
    from loraledger.policies.trace import impact as find_impact

    found = find_impact(settings(ctx).open(), _record(record, record_file))
    if json_:
        emit_json(found)
        return
    typer.echo(f"Record sha256 {found.record_sha256}")
    typer.echo(f"  in datasets:    {', '.join(found.datasets) or 'none'}")
    typer.echo(f"  trained into:   {', '.join(found.adapters) or 'none'}")
    running = ", ".join(
        f"{env} runs {', '.join(refs)}" for env, refs in sorted(found.environments.items())
    )
    typer.echo(f"  deployed now:   {running or 'none'}")


def _record(record: str | None, record_file: Path | None) -> object:
    """The record given on the command line or in a file, parsed as JSON."""
    if (record is None) == (record_file is None):
        raise InputError("give the record with exactly one of --record or --record-file")
    if record_file is not None:
        return loads_json(read_text(record_file, what="record file"), path=record_file)
    return loads_json(record or "", path="--record")
