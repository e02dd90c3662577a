"""``loraledger trace``: from a deployment or a version to everything it came from."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from loraledger.errors import UsageError
from loraledger.terminal import printable

from ._app import JSON_OPTION, emit_json, parse_moment, settings

if TYPE_CHECKING:
    from loraledger.policies.trace import Trace


def trace(
    ctx: typer.Context,
    ref: str = typer.Argument(None, help="An adapter version NAME@vN (or use --env)."),
    env: str = typer.Option(None, "--env", help="Trace what this environment runs."),
    name: str = typer.Option(
        None, "--name", help="With --env: only this adapter's track (default: every one)."
    ),
    at: str = typer.Option(
        None, "--at", help="With --env: what it ran at this moment (UTC, e.g. 2026-03-03T12:00)."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Walk and verify every link: version, training run, data, base, evaluations, gate
    checks, approvals, deployments, audit log. Exit 1 when any link fails. With --env,
    one trace per adapter the environment runs (JSON: a list), or --name's alone (JSON:
    one object, as for a REF)."""
    from loraledger.policies.trace import trace_tracks, trace_version

    registry = settings(ctx).open()
    if (ref is None) == (env is None):
        raise UsageError("trace one thing: a version REF, or --env ENV [--name NAME] [--at TIME]")
    if (at is not None or name is not None) and env is None:
        raise UsageError("--at and --name need --env")
    moment = parse_moment(at)
    if env is not None:
        results = trace_tracks(registry, env, moment, names=None if name is None else [name])
    else:
        results = [trace_version(registry, ref)]
    if json_:
        dumped = [{**r.model_dump(mode="json"), "complete": r.complete} for r in results]
        emit_json(dumped if env is not None and name is None else dumped[0])
    else:
        for result in results:
            _show(result)
    if not all(r.complete for r in results):
        raise typer.Exit(1)


def _show(result: Trace) -> None:
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
