"""``loraledger registry``: the registry as a whole, moved between backends."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import new_app, settings

app = new_app("The registry as a whole: copy it between a directory and PostgreSQL.")


@app.command("copy")
def copy(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="The registry to copy: a directory or a URL."),
    destination: str = typer.Argument(
        ..., help="Where the copy goes: a new or empty directory, or an empty PostgreSQL database."
    ),
    store: Path = typer.Option(
        None, "--store", help="For a PostgreSQL destination: the new or empty store directory."
    ),
) -> None:
    """Copy a whole registry (same id, chain, records and files) to another backend,
    verifying the source first and the copy from scratch afterwards."""
    from loraledger.registry.copying import copy_registry

    opts = settings(ctx)
    report = copy_registry(
        source, destination, store=store, keys=opts.keystore(), trust_root=opts.pinned_root()
    )
    rows = sum(report.rows.values())
    typer.echo(
        f"Copied registry {report.registry_id} from {report.source} to {report.destination}: "
        f"{rows} rows in {len(report.rows)} tables, {report.objects} stored objects "
        f"({report.bytes} bytes), audit head #{report.head_seq}"
    )
    checked = ", ".join(f"{n} {k}" for k, n in report.verified.items())
    typer.echo(f"Verified the copy: {checked}")
