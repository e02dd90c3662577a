"""``loraledger registry``: the registry as a whole, moved between backends."""

from __future__ import annotations

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
    store: str = typer.Option(
        None,
        "--store",
        help="For a PostgreSQL destination: the new or empty store directory, or an empty "
        "s3://BUCKET/PREFIX.",
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


def db_roles(
    ctx: typer.Context,
    writers: list[str] = typer.Option(
        [], "--writer", help="A login role that writes (engineers, reviewers, CI); repeatable."
    ),
    auditors: list[str] = typer.Option(
        [], "--auditor", help="A login role that only reads (auditors); repeatable."
    ),
    print_only: bool = typer.Option(
        False, "--print", help="Print the SQL for a DBA instead of running it."
    ),
) -> None:
    """Set up a PostgreSQL registry's database accounts: writers may add records and
    never edit or delete history; auditors may only read. Run as the database's owner."""
    from urllib.parse import urlsplit

    from loraledger.errors import UsageError
    from loraledger.registry.postgres import (
        AUDITOR_ROLE,
        WRITER_ROLE,
        PostgresDatabase,
        create_roles,
        role_statements,
    )

    opts = settings(ctx)
    if not isinstance(opts.registry, str):
        raise UsageError(
            "db-roles is for a registry on PostgreSQL (--registry postgresql://…); a "
            "directory registry's access is its files' permissions"
        )
    if print_only:
        database = urlsplit(opts.registry).path.strip("/")
        for statement in role_statements(database, writers=writers, auditors=auditors):
            typer.echo(statement + ";")
        return
    db = PostgresDatabase(opts.registry, lock_timeout=30)
    create_roles(db, writers=writers, auditors=auditors)
    typer.echo(
        f"Roles on {db.location}: {WRITER_ROLE} (read, insert; no update or delete of "
        f"history) for {', '.join(writers) or 'nobody yet'}; {AUDITOR_ROLE} (read only) for "
        f"{', '.join(auditors) or 'nobody yet'}"
    )
