"""``loraledger keys``: identities, their roles and their keys."""

from __future__ import annotations

import os

import typer

from loraledger.registry.models import Role

from ._app import JSON_OPTION, emit_json, emit_table, new_app, settings

app = new_app("Identities and their signing keys.")


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Identity name (letters, digits, '.', '_', '-')."),
    role: Role = typer.Option(..., "--role", help="What the identity may do."),
    passphrase: bool = typer.Option(
        False,
        "--passphrase",
        help="Encrypt the private key with a passphrase (prompted, or LORALEDGER_PASSPHRASE).",
    ),
    reuse_key: bool = typer.Option(
        False, "--reuse-key", help="Register the private key already in the key directory."
    ),
) -> None:
    """Create an identity with a new EC P-256 key pair (the first one must be an admin)."""
    opts = settings(ctx)
    secret: bytes | None = None
    if passphrase:
        text = os.environ.get("LORALEDGER_PASSPHRASE") or typer.prompt(
            "Passphrase", hide_input=True, confirmation_prompt=True
        )
        secret = text.encode("utf-8")
    registry = opts.open()
    identity = registry.identities.create(
        name, role, actor=opts.actor, passphrase=secret, reuse_key=reuse_key
    )
    typer.echo(f"Created identity {identity.name} ({identity.role.value})")
    typer.echo(f"  private key: {registry.keys.path_for(identity.name)}")
    typer.echo(f"  fingerprint: {identity.key_fingerprint}")


@app.command("list")
def list_(ctx: typer.Context, json_: bool = JSON_OPTION) -> None:
    """List identities with their roles, status and key fingerprints."""
    identities = settings(ctx).open().identities.list()
    if json_:
        emit_json(identities)
        return
    emit_table(
        ("name", "role", "status", "fingerprint", "created", "revoked because"),
        (
            (
                i.name,
                i.role.value,
                i.status.value,
                i.key_fingerprint[:16],
                f"{i.created_at:%Y-%m-%d %H:%M}",
                i.revoke_reason or "",
            )
            for i in identities
        ),
    )


@app.command()
def revoke(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Identity to revoke."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit log)."),
) -> None:
    """Revoke an identity's key (admin only); its signatures stop verifying."""
    opts = settings(ctx)
    identity = opts.open().identities.revoke(name, actor=opts.actor, reason=reason)
    typer.echo(f"Revoked identity {identity.name}: {identity.revoke_reason}")


@app.command("export-public")
def export_public(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Identity name."),
    json_: bool = JSON_OPTION,
) -> None:
    """Print an identity's public key (PEM), e.g. for `model_signing verify key`."""
    identity = settings(ctx).open().identities.get(name)
    if json_:
        emit_json(
            {
                "name": identity.name,
                "key_fingerprint": identity.key_fingerprint,
                "public_key_pem": identity.public_key_pem,
            }
        )
        return
    typer.echo(identity.public_key_pem, nl=False)
