"""``loraledger trust``: the registry's trust root, for auditors to pin."""

from __future__ import annotations

import typer

from ._app import new_app, settings

app = new_app("The registry's trust root (its first admin's key), to pin.")


@app.command()
def export(ctx: typer.Context) -> None:
    """Print the registry's root file (JSON): keep it apart from the registry and verify
    with `--trust-root FILE` (or LORALEDGER_TRUST_ROOT) to refuse a rewritten history."""
    from loraledger.errors import NotFound
    from loraledger.registry.trust import TrustRoot, root_of

    registry = settings(ctx).open()
    with registry.db.read() as conn:
        root = root_of(registry.history(conn))
    if root is None:
        raise NotFound("the registry has no identities yet; create its first admin first")
    pinned = TrustRoot(
        registry_id=registry.registry_id,
        name=root.name,
        key_fingerprint=root.key_fingerprint,
        public_key_pem=root.public_key_pem,
    )
    typer.echo(pinned.model_dump_json(indent=2))


@app.command()
def known() -> None:
    """List the roots this machine trusted on first use (registry id, root name, key)."""
    from loraledger.registry.trust import known_roots, known_roots_file

    roots = known_roots()
    if not roots:
        typer.echo(f"No roots remembered ({known_roots_file()}).")
        return
    for registry_id, root in sorted(roots.items()):
        typer.echo(f"{registry_id}  {root.get('name')}  {root.get('key_fingerprint')}")


@app.command()
def forget(registry_id: str = typer.Argument(..., help="The registry id to forget.")) -> None:
    """Forget the root remembered for a registry (after a legitimate re-creation): the next
    use trusts the root it finds and says so. Pin roots with --trust-root instead where
    you can."""
    from loraledger.registry.trust import forget_root, known_roots_file

    root = forget_root(registry_id)
    typer.echo(
        f"Forgot the root of registry {registry_id} ({root.get('name')}, key "
        f"{str(root.get('key_fingerprint'))[:16]}…) from {known_roots_file()}."
    )
