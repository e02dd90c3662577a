"""``loraledger keys``: identities, their roles and their keys."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from loraledger.atomic import write_atomically
from loraledger.errors import InputError, UsageError
from loraledger.inputs import read_text
from loraledger.paths import output_file
from loraledger.registry.models import IdentityKey, KeyStatus, Role
from loraledger.terminal import printable

from ._app import JSON_OPTION, emit_json, emit_table, new_app, parse_moment, settings

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
        f"registry: `loraledger keys create {name} --role ROLE --public-key FILE` (or, for "
        f"another key of yours, `loraledger keys add-key {name} --public-key FILE --label "
        "WHERE`)",
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
        pem = _public_key(public_key)
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
    """List identities (people) with their roles, status and keys."""
    identities = settings(ctx).open().identities.list()
    if json_:
        emit_json(identities)
        return
    emit_table(
        ("name", "role", "status", "keys", "created", "revoked because"),
        (
            (
                i.name,
                i.role.value,
                i.status.value,
                ", ".join(_key_text(k) for k in i.keys),
                f"{i.created_at:%Y-%m-%d %H:%M}",
                i.revoke_reason or "",
            )
            for i in identities
        ),
    )


def _key_text(key: IdentityKey) -> str:
    ended = "" if key.status is KeyStatus.ACTIVE else f", {key.status.value}"
    return f"{key.key_fingerprint[:16]} ({key.label}{ended})"


@app.command()
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The person."),
    json_: bool = JSON_OPTION,
) -> None:
    """One person: role, status and every key they have held, with where in the audit
    chain each was valid (a signature is judged by its place in the chain)."""
    identity = settings(ctx).open().identities.get(name)
    if json_:
        emit_json(identity)
        return
    typer.echo(f"{identity.name} ({identity.role.value}, {identity.status.value})")
    if identity.revoke_reason:
        typer.echo(f"  revoked by {identity.revoked_by}: {printable(identity.revoke_reason)}")
    emit_table(
        ("fingerprint", "label", "status", "valid for audit events", "why it ended"),
        (
            (
                k.key_fingerprint[:16],
                k.label,
                k.status.value,
                f"after #{k.added_seq}"
                + (f", before #{k.ended_seq}" if k.ended_seq else "")
                + (f"; void from #{k.void_from_seq}" if k.void_from_seq else ""),
                printable(k.end_reason or ""),
            )
            for k in identity.keys
        ),
    )


PUBLIC_KEY_OPTION = typer.Option(
    ...,
    "--public-key",
    metavar="FILE",
    help="The public key the person made on that machine with `keys generate NAME`.",
)
LABEL_OPTION = typer.Option(
    "", "--label", help="Which key this is: laptop, dashboard, ci (shown by `keys show`)."
)


def _public_key(path: Path) -> str:
    return read_text(path, limit=MAX_PUBLIC_KEY_BYTES, what="public key")


@app.command("add-key")
def add_key(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The person."),
    public_key: Path = PUBLIC_KEY_OPTION,
    label: str = LABEL_OPTION,
) -> None:
    """Enrol another key of a person (a dashboard host, a CI runner; admin only): it signs
    for them from now on, and counts as them, never as a second person."""
    opts = settings(ctx)
    pem = _public_key(public_key)
    identity = opts.open().identities.add_key(
        name, pem, actor=opts.actor, label=label, public_key_file=public_key
    )
    added = identity.keys[-1]
    typer.echo(f"Enrolled key {_key_text(added)} of {name}")
    typer.echo(f"  {name} signs with {len(identity.active_keys)} active keys, as one person")


@app.command()
def rotate(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The person."),
    public_key: Path = PUBLIC_KEY_OPTION,
    label: str = LABEL_OPTION,
) -> None:
    """Replace a person's key (admin only): the new key signs from now on, the old one is
    retired, and everything it signed before stays valid."""
    opts = settings(ctx)
    pem = _public_key(public_key)
    before = {k.key_fingerprint for k in opts.open().identities.get(name).active_keys}
    identity = opts.open().identities.rotate(
        name, pem, actor=opts.actor, label=label, public_key_file=public_key
    )
    new = identity.keys[-1]
    typer.echo(f"Rotated {name}: signs with {_key_text(new)} from now on")
    typer.echo(f"  retired {', '.join(f[:16] for f in before)}; what it signed stays valid")


@app.command()
def retire(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The person."),
    key: str = typer.Option(..., "--key", metavar="FINGERPRINT", help="The key (8+ hex digits)."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit log)."),
) -> None:
    """Retire one of a person's keys (admin only): it signs nothing more; what it signed
    before stays valid. A stolen key is revoked instead: `keys revoke NAME --key F
    --compromised-since TIME`."""
    opts = settings(ctx)
    identity = opts.open().identities.retire_key(name, key, actor=opts.actor, reason=reason)
    typer.echo(f"Retired key {key} of {name}; {len(identity.active_keys)} active keys left")


@app.command()
def revoke(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Identity to revoke."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit log)."),
    compromised_since: str = typer.Option(
        None,
        "--compromised-since",
        metavar="TIME",
        help="The key was stolen: void its signatures from TIME (UTC unless a zone is given) "
        "on. Without it the person can no longer act and what they signed stays valid.",
    ),
    key: str = typer.Option(
        None,
        "--key",
        metavar="FINGERPRINT",
        help="With --compromised-since: only this key of theirs was stolen (they stay).",
    ),
) -> None:
    """Revoke a person (admin only): they left, so they can no longer act and what they
    signed stays valid; or, with --compromised-since, their keys (or --key) were stolen and
    their signatures from that time on are void, refused wherever a decision rests on them."""
    opts = settings(ctx)
    since = parse_moment(compromised_since, "--compromised-since")
    identity = opts.open().identities.revoke(
        name, actor=opts.actor, reason=reason, compromised_since=since, key=key
    )
    if since is None:
        typer.echo(f"Revoked identity {identity.name}: {printable(identity.revoke_reason or '')}")
        typer.echo("  they can no longer act; what they signed before stays valid")
        return
    for k in identity.keys:
        if k.void_from_seq is not None:
            typer.echo(
                f"Revoked key {_key_text(k)} of {name} as compromised: its signatures from "
                f"audit event #{k.void_from_seq} on are void"
            )
    typer.echo(
        "  see what rested on them: `loraledger audit verify`, then `loraledger trace` of "
        "what each environment runs"
    )


@app.command("export-public")
def export_public(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Identity name."),
    key: str = typer.Option(
        None, "--key", metavar="FINGERPRINT", help="Which of the person's keys (8+ hex digits)."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Print a person's public key (PEM), e.g. for `model_signing verify key`: the newest
    active one, or --key. With --json, the person with every key they held (what
    `evidence verify --trusted-keys` reads: the roles there are the ones it relies on)."""
    from loraledger.registry.trust import key_history

    identity = settings(ctx).open().identities.get(name)
    if json_:  # the person (their first key at the top, as before) and every key
        emit_json(
            {
                "name": identity.name,
                "role": identity.role.value,
                "status": identity.status.value,
                "key_fingerprint": identity.key_fingerprint,
                "public_key_pem": identity.public_key_pem,
                "keys": [
                    {
                        "key_fingerprint": k.key_fingerprint,
                        "public_key_pem": k.public_key_pem,
                        **key_history(k),
                    }
                    for k in identity.keys
                ],
            }
        )
        return
    chosen = [k for k in identity.keys if key is None or k.key_fingerprint.startswith(key.lower())]
    if key is None:
        chosen = [*identity.active_keys] or chosen
    if not chosen or (key is not None and (len(key) < 8 or len(chosen) != 1)):
        raise InputError(
            f"{name!r} holds no key {key!r} (8 or more hex digits of one of: "
            f"{', '.join(k.key_fingerprint[:16] for k in identity.keys)})",
            field="--key",
        )
    typer.echo(chosen[-1].public_key_pem, nl=False)
