"""``loraledger keys``: identities, their roles and their keys."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from loraledger.atomic import write_atomically
from loraledger.errors import UsageError
from loraledger.inputs import read_text
from loraledger.paths import output_file
from loraledger.registry.models import Role
from loraledger.terminal import printable

from ._app import JSON_OPTION, emit_json, emit_table, new_app, settings

app = new_app("Identities and their signing keys.")
MAX_PUBLIC_KEY_BYTES = 64 * 1024  # a PEM public key is a few hundred bytes


def _passphrase(wanted: bool) -> bytes | None:
    if not wanted:
        return None
    text = os.environ.get("LORALEDGER_PASSPHRASE") or typer.prompt(
        "Passphrase", hide_input=True, confirmation_prompt=True
    )
    return text.encode("utf-8")


PASSPHRASE_OPTION = typer.Option(
    False,
    "--passphrase",
    help="Encrypt the private key with a passphrase (prompted, or LORALEDGER_PASSPHRASE).",
)


@app.command()
def generate(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Your identity name, as the admin will enrol it."),
    passphrase: bool = PASSPHRASE_OPTION,
    output: Path = typer.Option(
        None, "--output", "-o", help="Write the public key here (default: standard output)."
    ),
) -> None:
    """Make your own key pair on this machine (no registry needed); hand only the public
    key to an admin, who enrols it with `keys create NAME --role R --public-key FILE`."""
    from loraledger.registry.keys import KeyStore
    from loraledger.registry.refs import validate_name

    validate_name(name, what="identity name")
    if output is not None:
        output_file(output)  # before the key pair is made: nothing half-done
    store = KeyStore(settings(ctx).keys_dir)
    key = store.create(name, _passphrase(passphrase))
    if output is not None:
        write_atomically(output, key.public_key_pem)
    else:
        typer.echo(key.public_key_pem, nl=False)
    typer.echo(f"Created the key pair of {name}; the private key stays at {key.path}", err=True)
    typer.echo(f"  fingerprint: {key.fingerprint}", err=True)
    typer.echo(
        f"  send the public key{f' ({output})' if output else ''} to an admin of the "
        f"registry: `loraledger keys create {name} --role ROLE --public-key FILE`",
        err=True,
    )


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Identity name (letters, digits, '.', '_', '-')."),
    role: Role = typer.Option(..., "--role", help="What the identity may do."),
    public_key: Path = typer.Option(
        None,
        "--public-key",
        metavar="FILE",
        help="Enrol the public key NAME made with `keys generate` (the team's way: you never "
        "hold their private key).",
    ),
    passphrase: bool = PASSPHRASE_OPTION,
    reuse_key: bool = typer.Option(
        False, "--reuse-key", help="Register the private key already in the key directory."
    ),
) -> None:
    """Create an identity: enrol its own public key (--public-key), or make its key pair
    here (the first admin, a single-person registry, the demo). The first must be an admin."""
    opts = settings(ctx)
    pem = None
    if public_key is not None:
        if passphrase or reuse_key:
            raise UsageError(
                "--public-key enrols a key made elsewhere: drop --passphrase and --reuse-key"
            )
        pem = read_text(public_key, limit=MAX_PUBLIC_KEY_BYTES, what="public key")
    registry = opts.open()
    identity = registry.identities.create(
        name,
        role,
        actor=opts.actor,
        passphrase=_passphrase(passphrase),
        reuse_key=reuse_key,
        public_key_pem=pem,
        public_key_file=public_key,
    )
    typer.echo(f"Created identity {identity.name} ({identity.role.value})")
    if pem is not None:
        typer.echo(f"  enrolled public key from {public_key}; {name} holds the private key")
    else:
        typer.echo(f"  private key: {registry.keys.path_for(identity.name)}")
    typer.echo(f"  fingerprint: {identity.key_fingerprint}")
    if identity.created_by == identity.name:  # the first admin: the registry's root
        typer.echo(
            f"  {name} is the root of this registry; give auditors its root file: "
            "`loraledger trust export > root.json` (verify with --trust-root root.json)"
        )
    if pem is None and identity.created_by != identity.name:
        typer.echo(
            f"note: {name}'s private key was made in your key directory, so you hold it: "
            f"fine for a single-person registry or a demo. In a team, {name} runs "
            f"`loraledger keys generate {name}` on their own machine and you enrol only the "
            "public key with --public-key.",
            err=True,
        )


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
    typer.echo(f"Revoked identity {identity.name}: {printable(identity.revoke_reason or '')}")


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
                "role": identity.role.value,
                "status": identity.status.value,
                "key_fingerprint": identity.key_fingerprint,
                "public_key_pem": identity.public_key_pem,
            }
        )
        return
    typer.echo(identity.public_key_pem, nl=False)
