"""``loraledger policy``: the registry's release policy, version by version."""

from __future__ import annotations

import difflib
from pathlib import Path

import typer

from ._app import JSON_OPTION, emit_json, emit_table, new_app, parse_moment, settings

app = new_app("The registry's release policy: set a new version (admins), show it, its history.")


@app.command("set")
def set_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The release policy file (YAML)."),
    reason: str = typer.Option(..., "--reason", help="Why this version (kept with it)."),
) -> None:
    """Make FILE the registry's policy in force (an admin; signed and audited): gate
    checks, approvals and promotions are judged by it from now on."""
    from loraledger.policies.release import set_policy

    opts = settings(ctx)
    registry = opts.open()
    before = registry.policies.in_force()
    record = set_policy(registry, file, reason=reason, actor=opts.actor)
    typer.echo(
        f"Policy {record.version} is in force (sha256 {record.sha256[:16]}…), set by "
        f"{record.created_by}: {record.reason}"
    )
    if before is not None:
        typer.echo(f"Changes from policy {before.version}:")
        _diff(before.text, record.text, f"policy v{before.version}", f"policy v{record.version}")
        typer.echo(
            "Approvals given under the previous version no longer count (their evidence "
            "hash names it); reviewers approve again under this one."
        )


@app.command()
def show(
    ctx: typer.Context,
    at: str = typer.Option(None, "--at", help="The version in force at this time (UTC)."),
    version: int = typer.Option(None, "--version", min=1, help="This version instead."),
    json_: bool = JSON_OPTION,
) -> None:
    """Print the policy in force (or at --at, or --version N): its text on stdout after
    one line saying which version it is (JSON: the whole signed record)."""
    from loraledger.errors import PolicyNotInForce, UsageError

    if at is not None and version is not None:
        raise UsageError("give --at or --version, not both")
    registry = settings(ctx).open()
    moment = parse_moment(at)
    record = registry.policies.get(version) if version else registry.policies.in_force(moment)
    if record is None:
        when = f" at {moment:%Y-%m-%d %H:%M}" if moment else ""
        raise PolicyNotInForce(
            f"the registry had no release policy in force{when}; an admin sets one with "
            "`loraledger policy set FILE --reason TEXT`"
        )
    if json_:
        emit_json(record)
        return
    typer.echo(
        f"# policy v{record.version}, sha256 {record.sha256}, set by {record.created_by} "
        f"at {record.created_at:%Y-%m-%d %H:%M:%S} UTC: {record.reason}"
    )
    typer.echo(record.text, nl=not record.text.endswith("\n"))


@app.command()
def history(ctx: typer.Context, json_: bool = JSON_OPTION) -> None:
    """Every version, oldest first: who set it, when, why."""
    versions = settings(ctx).open().policies.history()
    if json_:
        emit_json([v.model_dump(mode="json", exclude={"text"}) for v in versions])
        return
    if not versions:
        typer.echo("No release policy set yet: `loraledger policy set FILE --reason TEXT`.")
        return
    emit_table(
        ["version", "sha256", "set at (UTC)", "by", "reason"],
        [
            [str(v.version), v.sha256[:16] + "…", f"{v.created_at:%Y-%m-%d %H:%M}", v.created_by,
             v.reason]
            for v in versions
        ],
    )  # fmt: skip


def _diff(before: str, after: str, old: str, new: str) -> None:
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), old, new, lineterm="", n=1
    )
    for line in lines:
        typer.echo("  " + line)
