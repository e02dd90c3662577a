"""``loraledger trace``: from a deployment or a version to everything it came from."""

from __future__ import annotations

import json

import typer

from loraledger.errors import UsageError
from loraledger.terminal import printable

from ._app import JSON_OPTION, emit_json, parse_moment, settings


def trace(
    ctx: typer.Context,
    ref: str = typer.Argument(None, help="An adapter version NAME@vN (or use --env)."),
    env: str = typer.Option(None, "--env", help="Trace what this environment runs."),
    at: str = typer.Option(
        None, "--at", help="With --env: what it ran at this moment (UTC, e.g. 2026-03-03T12:00)."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Walk and verify every link: version, training run, data, base, evaluations, gate
    checks, approvals, deployments, audit log. Exit 1 when any link fails."""
    from loraledger.policies.trace import trace_environment, trace_version

    registry = settings(ctx).open()
    if (ref is None) == (env is None):
        raise UsageError("trace one thing: a version REF, or --env ENV [--at TIME]")
    if at is not None and env is None:
        raise UsageError("--at needs --env")
    moment = parse_moment(at)
    result = trace_environment(registry, env, moment) if env else trace_version(registry, ref)
    if json_:
        emit_json({**result.model_dump(mode="json"), "complete": result.complete})
    else:
        typer.echo(f"Trace of {result.subject}")
        if result.deployment is not None:
            d = result.deployment
            typer.echo(
                f"  deployment #{d.seq} ({d.action}) by {d.created_by} at "
                f"{d.created_at:%Y-%m-%d %H:%M:%S} UTC: {d.reason}"
            )
        for link in result.links:
            mark = "ok  " if link.verified else "FAIL"
            detail = json.dumps(link.detail, sort_keys=True, default=str)
            shown = detail if len(detail) <= 160 else detail[:157] + "..."
            typer.echo(f"  [{mark}] {link.kind} {link.ref}: {printable(link.problem or shown)}")
        typer.echo("Every link verified." if result.complete else "Some links did not verify.")
    if not result.complete:
        raise typer.Exit(1)
