"""The ``loraledger`` command: a thin skin over the library API."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, TextIO

import typer

from loraledger import __version__

from . import (
    adapters,
    audit,
    base,
    dashboard,
    data,
    evals,
    exports,
    gate,
    keys,
    policy,
    registry_cmd,
    release,
    serve,
    trust,
)
from . import trace as trace_command
from . import train as train_command
from ._app import Settings, new_app, settings

app = new_app(
    "LoRA Ledger: a signed, tamper-evident registry of fine-tuned LoRA adapters.\n\n"
    "Exit codes: 0 success, 1 a verification failed or an operation was refused, "
    "2 bad usage or bad input."
)
app.add_typer(keys.app, name="keys")
app.add_typer(adapters.app, name="adapters")
app.add_typer(data.app, name="data")
app.add_typer(base.app, name="base")
app.command("train")(train_command.train)
app.command("ask")(train_command.ask)
app.command("eval")(evals.eval_command)
app.command("compare")(evals.compare_command)
app.add_typer(evals.suites_app, name="suites")
app.add_typer(evals.evals_app, name="evals")
app.add_typer(policy.app, name="policy")
app.add_typer(gate.app, name="gate")
app.command("approve")(release.approve)
app.command("reject")(release.reject)
app.command("promote")(release.promote)
app.command("rollback")(release.rollback)
app.command("retire")(release.retire)
app.command("deployments")(release.deployments)
app.command("status")(release.status)
app.command("sync")(release.sync)
app.command("serve")(serve.serve)
app.command("monitor")(release.monitor)
app.command("trace")(trace_command.trace)
app.add_typer(exports.export_app, name="export")
app.add_typer(exports.evidence_app, name="evidence")
app.add_typer(audit.app, name="audit")
app.add_typer(trust.app, name="trust")
app.add_typer(registry_cmd.app, name="registry")
app.command("db-roles")(registry_cmd.db_roles)
app.add_typer(dashboard.app, name="dashboard")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loraledger {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    registry: str = typer.Option(
        ".loraledger",
        "--registry",
        envvar="LORALEDGER_REGISTRY",
        help="The registry: a directory, or postgresql://USER@HOST:PORT/DBNAME (the password "
        "from ~/.pgpass or PGPASSWORD, never in the URL).",
        show_default=True,
    ),
    actor: str = typer.Option(
        None, "--as", envvar="LORALEDGER_ACTOR", help="The identity you act as."
    ),
    keys_dir: Path = typer.Option(
        None,
        "--keys-dir",
        envvar="LORALEDGER_KEYS_DIR",
        help="Directory of private keys (default ~/.loraledger/keys).",
    ),
    trust_root: Path = typer.Option(
        None,
        "--trust-root",
        envvar="LORALEDGER_TRUST_ROOT",
        help="The registry's root file (`trust export`): verify its history against it.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks of errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    warnings.showwarning = _show_warning
    from loraledger.registry.core import registry_location

    ctx.obj = Settings(
        registry=registry_location(registry),
        actor=actor,
        keys_dir=keys_dir,
        verbose=verbose,
        trust_root=trust_root,
    )


@app.command()
def init(
    ctx: typer.Context,
    store: str = typer.Option(
        None,
        "--store",
        help="For a PostgreSQL registry, where its artifacts go: a new or empty directory "
        "mounted at the same path on every machine that writes, or an empty "
        "s3://BUCKET/PREFIX (credentials and endpoint from AWS_* variables).",
    ),
) -> None:
    """Create a new registry: a directory, or a PostgreSQL database with a store."""
    from loraledger.registry import Registry

    opts = settings(ctx)
    registry = Registry.init(opts.registry, store=store)
    where = registry.location + (f" with its store in {registry.store_address}" if store else "")
    typer.echo(f"Initialised registry {where} (id {registry.registry_id})")
    typer.echo("Next: loraledger keys create NAME --role admin")


_default_showwarning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> Any:
    """A :class:`LedgerWarning` as one ``warning:`` line on stderr; others as Python
    prints them."""
    from loraledger.errors import LedgerWarning

    if issubclass(category, LedgerWarning):
        from loraledger.terminal import printable

        typer.echo(f"warning: {printable(str(message))}", err=True)
        return None
    return _default_showwarning(message, category, filename, lineno, file, line)


def main() -> None:
    app(prog_name="loraledger")
