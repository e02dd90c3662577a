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
