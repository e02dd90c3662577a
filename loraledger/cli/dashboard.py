"""``loraledger dashboard``: start the Streamlit dashboard; ``dashboard add-user``: give
someone a sign-in mapped to a registry identity."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from loraledger.errors import UsageError

from ._app import LedgerGroup, settings

if TYPE_CHECKING:
    from loraledger.registry import Registry

app = typer.Typer(
    help="The Streamlit dashboard: review, promote, roll back, audit and trace.",
    cls=LedgerGroup,
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Streamlit settings that decide what the server exposes without sign-in, pinned on the
# command line (which outranks any .streamlit/config.toml where the server starts): no
# static file serving, no agent API, no script health check that runs the app, no
# identities taken from request headers, XSRF and CORS protection on
# (docs/threat-model.md, "The dashboard's server").
SERVER_LOCKDOWN = (
    "--server.enableStaticServing", "false",
    "--server.enableAgentApi", "false",
    "--server.scriptHealthCheckEnabled", "false",
    "--server.trustedUserHeaders", "{}",
    "--server.enableXsrfProtection", "true",
    "--server.enableCORS", "true",
    "--server.runOnSave", "false",
    "--global.developmentMode", "false",
)  # fmt: skip

ACCOUNTS_OPTION = typer.Option(
    None,
    "--accounts",
    help="The sign-in accounts file (default REGISTRY/dashboard-accounts.yaml).",
)


def _accounts_path(registry: Registry, accounts: Path | None) -> Path:
    """The accounts file: given, or beside the registry's files (its directory, or a
    PostgreSQL registry's store directory)."""
    from loraledger.dashboard.accounts import accounts_beside

    return accounts or accounts_beside(registry)


@app.callback()
def serve(
    ctx: typer.Context,
    registry: str = typer.Option(
        None, "--registry", help="The registry (default: the global --registry)."
    ),
    port: int = typer.Option(8501, "--port", help="The port to serve on."),
    address: str = typer.Option(
        "127.0.0.1", "--address", help="The address to listen on (127.0.0.1: this machine only)."
    ),
    accounts: Path = ACCOUNTS_OPTION,
    policy: Path = typer.Option(
        None,
        "--policy",
        help="The policy file you expect in force (default: the registry's policy in force; "
        "another file is shown as a dry run, and decisions under it are refused).",
    ),
) -> None:
    """Start the dashboard (sign-in first; every action is a library call as that user)."""
    if ctx.invoked_subcommand is not None:
        return
    import loraledger.dashboard
    from loraledger.dashboard.accounts import load_accounts
    from loraledger.dashboard.ui import ACCOUNTS_ENV, POLICY_ENV
    from loraledger.policies.release import load_policy
    from loraledger.registry import Registry
    from loraledger.registry.core import registry_location
    from loraledger.registry.keys import KEYS_DIR_ENV
    from loraledger.registry.registry import REGISTRY_ENV

    opts = settings(ctx)
    root = registry_location(registry) if registry else opts.registry
    if isinstance(root, Path):
        root = root.resolve()
    opened = Registry.open(root)  # a clear error now rather than in the browser
    accounts_file = _accounts_path(opened, accounts).resolve()
    load_accounts(accounts_file)
    if policy is not None:
        load_policy(policy)  # a bad file is one line now, not an error in the browser
    env = {**os.environ, REGISTRY_ENV: str(root), ACCOUNTS_ENV: str(accounts_file)}
    if opts.keys_dir is not None:
        env[KEYS_DIR_ENV] = str(opts.keys_dir.resolve())
    if policy is not None:
        env[POLICY_ENV] = str(policy.resolve())
    script = Path(loraledger.dashboard.__file__).parent / "app.py"
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(port), "--server.address", address,
        "--server.headless", "true", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
        *SERVER_LOCKDOWN,
    ]  # fmt: skip
    typer.echo(f"LoRA Ledger dashboard for {opened.location} on http://{address}:{port}", err=True)
    sys.stdout.flush()
    os.execve(sys.executable, command, env)  # the server replaces this process


@app.command("add-user")
def add_user(
    ctx: typer.Context,
    user: str = typer.Argument(..., help="The sign-in name."),
    identity: str = typer.Option(..., "--identity", help="The registry identity it acts as."),
    name: str = typer.Option(None, "--name", help="The name shown (default: USER)."),
    email: str = typer.Option(None, "--email", help="For sign-in with OpenID Connect."),
    replace: bool = typer.Option(False, "--replace", help="Reset an existing user."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    accounts: Path = ACCOUNTS_OPTION,
) -> None:
    """Add a dashboard user with a bcrypt-hashed password, mapped to a registry identity."""
    from loraledger.dashboard.accounts import add_user as add

    opts = settings(ctx)
    opened = opts.open()
    found = opened.identities.get(identity)  # must exist; its role applies
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    else:
        raise UsageError("no terminal to ask for the password; pass --password-stdin")
    path = _accounts_path(opened, accounts)
    add(path, user, identity=identity, password=password, name=name, email=email,
        replace=replace)  # fmt: skip
    typer.echo(f"Dashboard user {user} signs in as {identity} ({found.role.value}); {path}")
