"""``loraledger gate``: a version judged against an environment of a release policy."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import JSON_OPTION, emit_json, emit_table, new_app, settings

app = new_app("Release gates: policy-as-code rules checked against the registry's evidence.")


@app.command("check")
def check(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="The adapter version: NAME@vN (or NAME for the latest)."),
    env: str = typer.Option(..., "--env", help="The environment of the policy, e.g. staging."),
    policy: Path = typer.Option(
        None,
        "--policy",
        help="Judge by this policy file instead: a dry run, recorded nowhere, unless it is "
        "the registry's policy in force.",
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Check every rule of the environment under the registry's policy in force; exit 0
    only when all pass. Recorded (a dry run under another --policy is not)."""
    from loraledger.policies.gates import check_gate

    opts = settings(ctx)
    registry = opts.open()
    result = check_gate(registry, ref, env, actor=opts.actor, policy=policy)
    recorded = result.id in registry.gate_checks.ids(result.adapter, env)
    if json_:
        emit_json(result)
    else:
        verdict = "PASSED" if result.passed else "FAILED"
        typer.echo(
            f"Gate {env} for {result.adapter} (digest {result.artifact_digest[:16]}…): {verdict}"
        )
        typer.echo(f"  policy {result.policy_path} (sha256 {result.policy_sha256[:16]}…)")
        emit_table(
            ["", "rule", "measured / evidence", "from the policy's"],
            [
                ["pass" if r.passed else "FAIL", r.rule, r.message, _place(r.source)]
                for r in result.rules
            ],
        )
        if recorded:
            typer.echo(
                f"Gate check {result.id} recorded (inputs sha256 {result.inputs_sha256[:16]}…)."
            )
        elif not registry.may_append():
            typer.echo(
                "Dry run: this database account only reads (an auditor's); nothing recorded."
            )
        else:
            typer.echo(
                f"Dry run under {result.policy_path}, not the registry's policy in force: "
                "nothing recorded."
            )
    if not result.passed:
        raise typer.Exit(1)


def _place(source: str | None) -> str:
    """``environments.production.adapters.fraud-*`` as ``production, adapters fraud-*``."""
    if source is None:
        return ""
    environment, _, pattern = source.removeprefix("environments.").partition(".adapters.")
    return f"{environment}, adapters {pattern}" if pattern else environment
