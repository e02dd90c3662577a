"""``loraledger export ...`` (standard documents) and ``loraledger evidence ...`` (packs)."""

from __future__ import annotations

from pathlib import Path

import typer

from loraledger.atomic import write_atomically
from loraledger.paths import output_file
from loraledger.policies.exports import DOCUMENTS, Document
from loraledger.terminal import printable

from ._app import JSON_OPTION, emit_json, new_app, parse_moment, settings

export_app = new_app("Export standard documents for an adapter version.")
evidence_app = new_app("Evidence packs: everything behind one deployment, verifiable offline.")

OUTPUT_OPTION = typer.Option(
    None, "--output", "-o", help="Write to this file (written aside, then renamed); default stdout."
)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_atomically(output_file(output), text)
        typer.echo(f"Wrote {output}", err=True)


def _export_command(document: Document) -> None:
    def command(
        ctx: typer.Context,
        ref: str = typer.Argument(..., help="An adapter version NAME@vN."),
        output: Path = OUTPUT_OPTION,
    ) -> None:
        if output is not None:
            output_file(output)  # before the work, not after it
        _emit(document.render(settings(ctx).open(), ref), output)

    command.__doc__ = document.help
    export_app.command(document.name)(command)


for _document in DOCUMENTS.values():
    _export_command(_document)


@evidence_app.command("export")
def evidence_export(
    ctx: typer.Context,
    env: str = typer.Option(..., "--env", help="The environment whose deployment to pack."),
    output: Path = typer.Option(..., "--output", "-o", help="The pack to write (.tar.gz)."),
    at: str = typer.Option(None, "--at", help="The deployment at this moment (UTC)."),
    name: str = typer.Option(
        None, "--name", help="The adapter whose track to pack, when ENV runs several."
    ),
    policy: Path = typer.Option(
        None, "--policy", help="The release policy file, included when it is the one in force."
    ),
) -> None:
    """Write the evidence pack of what ENV runs of one adapter (auditor, reviewer or
    admin)."""
    from loraledger.policies.evidence import export_pack

    opts = settings(ctx)
    registry = opts.open()
    written = export_pack(
        registry, env, output, actor=opts.actor, at=parse_moment(at), policy_file=policy,
        name=name,
    )  # fmt: skip
    typer.echo(f"Wrote {written} ({written.stat().st_size} bytes); check it with "
               f"`loraledger evidence verify {written}`")  # fmt: skip
    if not registry.may_append():
        typer.echo(
            "  not recorded in the audit log: this database account only reads (an "
            "auditor's); the pack is signed with your key",
            err=True,
        )


@evidence_app.command("verify")
def evidence_verify(
    ctx: typer.Context,
    pack: Path = typer.Argument(..., help="An evidence pack (.tar.gz)."),
    trusted_keys: Path = typer.Option(
        None,
        "--trusted-keys",
        help="Only trust these public keys (a keys.json, or `keys export-public NAME --json`).",
    ),
    max_pack_bytes: int = typer.Option(
        2 * 1024**3, "--max-pack-bytes", min=1, help="Most bytes the pack may unpack to."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Check every signature, hash and link of a pack offline, then (when a registry is
    configured) that the registry still holds what the pack saw. Exit 1 if any fails."""
    from loraledger.errors import NotARegistry
    from loraledger.policies import witness
    from loraledger.policies.evidence import trusted_keys as read_keys
    from loraledger.policies.evidence import verify_pack

    trusted = read_keys(trusted_keys) if trusted_keys else None
    report = verify_pack(pack, trusted, max_bytes=max_pack_bytes)
    if report.passed:
        try:
            registry = settings(ctx).open()
        except NotARegistry:
            registry = None
        if registry is not None:
            report = witness.check_pack(registry, report)
    if json_:
        emit_json({**report.model_dump(mode="json"), "passed": report.passed})
    else:
        subject = (
            f"{report.adapter} in {report.environment}"
            if report.adapter
            else "its signed manifest does not hold, so nothing in it can be relied on"
        )
        typer.echo(f"Evidence pack {pack}: {subject}")
        for check in report.checks:
            mark = "ok  " if check.passed else "FAIL"
            typer.echo(f"  [{mark}] {check.name}: {printable(check.detail)}")
        typer.echo("  keys relied on: " + ", ".join(
            f"{name} {fpr[:16]}…" for name, fpr in sorted(report.keys.items())
        ))  # fmt: skip
        typer.echo("Every check passed." if report.passed else "The pack does NOT verify.")
    if not report.passed:
        raise typer.Exit(1)
