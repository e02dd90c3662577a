"""``loraledger approve``, ``reject``, ``promote``, ``rollback`` and ``deployments``."""

from __future__ import annotations

from pathlib import Path

import typer

from loraledger.errors import NothingDeployed

from ._app import JSON_OPTION, emit_json, emit_table, settings

POLICY_OPTION = typer.Option(
    None,
    "--policy",
    help="The policy file you expect to be in force: refused unless it is the registry's "
    "(the registry's policy judges; see `loraledger policy show`).",
)
ENV_OPTION = typer.Option(..., "--env", help="The environment, e.g. staging or production.")
REF_ARGUMENT = typer.Argument(..., help="The adapter version: NAME@vN.")
COMMENT_OPTION = typer.Option(..., "--comment", help="Why: kept with the signed decision.")


def _decide(
    ctx: typer.Context,
    decision: str,
    ref: str,
    env: str,
    comment: str,
    policy: Path | None,
    json_: bool,
) -> None:
    from loraledger.policies.approvals import decide

    opts = settings(ctx)
    approval = decide(
        opts.open(), ref, env, decision, comment=comment, actor=opts.actor, policy=policy
    )
    if json_:
        emit_json(approval)
        return
    verb = "Approved" if decision == "approve" else "Rejected"
    typer.echo(f"{verb} {approval.adapter} for {env} as {approval.signer} (approval {approval.id})")
    typer.echo(
        f"  signed over digest {approval.artifact_digest[:16]}…, policy "
        f"{approval.policy_sha256[:16]}…, evidence {approval.inputs_sha256[:16]}… "
        f"(gate check {approval.gate_check_id[:8]})"
    )


def approve(
    ctx: typer.Context,
    ref: str = REF_ARGUMENT,
    env: str = ENV_OPTION,
    comment: str = COMMENT_OPTION,
    policy: Path = POLICY_OPTION,
    json_: bool = JSON_OPTION,
) -> None:
    """Approve a version for an environment: a decision signed with your key."""
    _decide(ctx, "approve", ref, env, comment, policy, json_)


def reject(
    ctx: typer.Context,
    ref: str = REF_ARGUMENT,
    env: str = ENV_OPTION,
    comment: str = COMMENT_OPTION,
    policy: Path = POLICY_OPTION,
    json_: bool = JSON_OPTION,
) -> None:
    """Reject a version for an environment: blocks promotion until the evidence changes."""
    _decide(ctx, "reject", ref, env, comment, policy, json_)


def promote(
    ctx: typer.Context,
    ref: str = REF_ARGUMENT,
    env: str = ENV_OPTION,
    policy: Path = POLICY_OPTION,
    json_: bool = JSON_OPTION,
) -> None:
    """Deploy a version to an environment: the gate must pass now, approvals included."""
    from loraledger.policies.deployments import promote as run_promote

    opts = settings(ctx)
    deployment = run_promote(opts.open(), ref, env, actor=opts.actor, policy=policy)
    if json_:
        emit_json(deployment)
        return
    typer.echo(
        f"{env} now runs {deployment.adapter} (deployment #{deployment.seq}, digest "
        f"{deployment.artifact_digest[:16]}…, {len(deployment.approval_ids)} approvals)"
    )


def rollback(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    reason: str = typer.Option(..., "--reason", help="Why: recorded with the rollback."),
    to: str = typer.Option(
        None, "--to", help="An earlier version that ran there (default: the previous one)."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Put back, in one step, the version an environment ran before (verified first)."""
    from loraledger.policies.deployments import rollback as run_rollback

    opts = settings(ctx)
    deployment = run_rollback(opts.open(), env, reason=reason, actor=opts.actor, to=to)
    if json_:
        emit_json(deployment)
        return
    typer.echo(
        f"{env} rolled back to {deployment.adapter} (deployment #{deployment.seq}, digest "
        f"{deployment.artifact_digest[:16]}…)"
    )


def deployments(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    json_: bool = JSON_OPTION,
) -> None:
    """The full deployment history of an environment: who, when, why, which digest."""
    registry = settings(ctx).open()
    history = registry.deployments.history(env)
    if not history:  # a mistyped name is not an empty history
        known = registry.deployments.environments()
        others = ", ".join(known) or "none yet"
        raise NothingDeployed(
            f"nothing was ever deployed to {env!r}; environments with deployments: {others}"
        )
    if json_:
        emit_json(history)
        return
    emit_table(
        ["#", "version", "digest", "action", "by", "when (UTC)", "why"],
        [
            [
                str(d.seq),
                d.adapter,
                d.artifact_digest[:16],
                d.action,
                d.created_by,
                d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                d.reason,
            ]
            for d in history
        ],
    )


def sync(
    ctx: typer.Context,
    directory: Path = typer.Argument(
        ..., help="The serving directory (DIR/current is the bundle)."
    ),
    env: str = typer.Option(None, "--env", help="The environment whose current version to write."),
    check: bool = typer.Option(
        False, "--check", help="Only re-hash DIR's bundle against its signed manifest (offline)."
    ),
) -> None:
    """Write an environment's current bundle into DIR atomically, or --check it for drift."""
    from loraledger.errors import NotARegistry, UsageError, VerificationError
    from loraledger.policies import serving

    if check:
        problems = serving.check(directory)
        if problems:
            raise VerificationError("; ".join(problems))
        target = (directory / serving.CURRENT).resolve()
        typer.echo(f"{directory}/current ({target.name[:16]}…) matches its signed manifest")
        try:
            registry = settings(ctx).open()
        except NotARegistry:
            typer.echo("(no registry here: checked offline, not against what the registry says)")
            return
        deployment = serving.check_against(registry, directory)
        typer.echo(
            f"and it is what {deployment.environment} runs in the registry (deployment "
            f"#{deployment.seq}, {deployment.adapter}), whose log still holds its audit head"
        )
        return
    if env is None:
        raise UsageError("name the environment with --env ENV (or pass --check)")
    result = serving.sync(settings(ctx).open(), env, directory)
    d = result.deployment
    typer.echo(
        f"{directory}/current is {d.adapter} (deployment #{d.seq} of {env}, digest "
        f"{d.artifact_digest[:16]}…{', reused' if result.reused else ''})"
    )


def monitor(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    json_: bool = JSON_OPTION,
) -> None:
    """Re-run the deployed version's policy suites and compare with the results it was
    promoted on; a regression exits 1 and is recorded as an alert."""
    from loraledger.policies.monitor import monitor as run_monitor

    opts = settings(ctx)
    report = run_monitor(opts.open(), env, actor=opts.actor)
    if json_:
        emit_json({"alert": report.alert, "comparisons": list(report.comparisons)})
    else:
        d = report.deployment
        typer.echo(f"Monitoring {env}: {d.adapter} (deployment #{d.seq})")
        for c in report.comparisons:
            typer.echo(f"  {c.suite_name}: {c.verdict} against the promotion's results")
            for r in c.results:
                if r.verdict == "regression":
                    typer.echo(f"    {r.task} {r.metric}: {r.old_mean:.3f} -> {r.new_mean:.3f}")
        typer.echo("ALERT recorded." if report.alert else "No regression.")
    if report.alert:
        raise typer.Exit(1)
