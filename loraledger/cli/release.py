"""``loraledger approve``, ``reject``, ``promote``, ``rollback``, ``retire``, ``deployments``,
``status``, ``sync`` and ``monitor``."""

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
    name: str = typer.Argument(
        None,
        help="The adapter name whose track to roll back (may be left out when ENV has "
        "only ever run one adapter, or with --to).",
    ),
    env: str = ENV_OPTION,
    reason: str = typer.Option(..., "--reason", help="Why: recorded with the rollback."),
    to: str = typer.Option(
        None, "--to", help="An earlier version that ran there (default: the previous one)."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Put back, in one step, the version of one adapter an environment ran before
    (verified first); its other adapters stay as they are."""
    from loraledger.policies.deployments import rollback as run_rollback

    opts = settings(ctx)
    deployment = run_rollback(opts.open(), env, name=name, reason=reason, actor=opts.actor, to=to)
    if json_:
        emit_json(deployment)
        return
    typer.echo(
        f"{env} rolled back to {deployment.adapter} (deployment #{deployment.seq}, digest "
        f"{deployment.artifact_digest[:16]}…); its other adapters are as they were"
    )


def retire(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The adapter name to take out of the environment."),
    env: str = ENV_OPTION,
    reason: str = typer.Option(..., "--reason", help="Why: recorded with the retirement."),
    json_: bool = JSON_OPTION,
) -> None:
    """Take an adapter out of an environment (it runs no version of it after); its other
    adapters stay. A reviewer's or admin's act under the policy in force; `rollback NAME`
    puts it back."""
    from loraledger.policies.deployments import retire as run_retire

    opts = settings(ctx)
    deployment = run_retire(opts.open(), name, env, reason=reason, actor=opts.actor)
    if json_:
        emit_json(deployment)
        return
    typer.echo(
        f"{env} no longer runs {name} (retired {deployment.adapter}, deployment #{deployment.seq})"
    )


def deployments(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    name: str = typer.Option(None, "--name", help="Only this adapter's track."),
    json_: bool = JSON_OPTION,
) -> None:
    """The full deployment history of an environment (or of one adapter's track in it):
    who, when, why, which digest."""
    registry = settings(ctx).open()
    history = registry.deployments.history(env)
    if not history:  # a mistyped name is not an empty history
        known = registry.deployments.environments()
        others = ", ".join(known) or "none yet"
        raise NothingDeployed(
            f"nothing was ever deployed to {env!r}; environments with deployments: {others}"
        )
    if name is not None:
        names = sorted({d.name for d in history})
        history = [d for d in history if d.name == name]
        if not history:
            raise NothingDeployed(
                f"{name} was never deployed to {env}; its adapters: {', '.join(names)}"
            )
    if json_:
        emit_json(history)
        return
    emit_table(
        ["#", "adapter", "version", "digest", "action", "by", "when (UTC)", "why"],
        [
            [
                str(d.seq),
                d.name if d.track is not None else f"{d.name} (whole environment)",
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


def status(
    ctx: typer.Context,
    env: str = typer.Option(None, "--env", help="Only this environment."),
    json_: bool = JSON_OPTION,
) -> None:
    """What every environment runs now: one row per adapter (track), verified as every
    read is; a deployment signed with a key not valid at its place is flagged (it is
    not served)."""
    registry = settings(ctx).open()
    if env is not None and not registry.deployments.history(env):
        known = ", ".join(registry.deployments.environments()) or "none yet"
        raise NothingDeployed(f"nothing was ever deployed to {env!r}; environments: {known}")
    rows = registry.deployments.tracks(env)
    if json_:
        emit_json(rows)
        return
    if not rows:
        typer.echo(f"{env or 'No environment'} runs nothing now.")
        return
    emit_table(
        ["environment", "adapter", "digest", "since (UTC)", "by", "deployment"],
        [
            [
                r.environment,
                r.adapter + ("  NOT SERVED: signature" if r.signature_problem else ""),
                r.digest[:16],
                f"{r.since:%Y-%m-%d %H:%M:%S}",
                f"{r.by} ({r.action})",
                f"#{r.deployment_seq} {r.deployment_id[:8]}",
            ]
            for r in rows
        ],
    )
    for r in rows:
        if r.signature_problem:
            typer.echo(f"{r.environment} {r.adapter}: {r.signature_problem}", err=True)


def sync(
    ctx: typer.Context,
    directory: Path = typer.Argument(
        ..., help="The serving directory (DIR/current is the bundle)."
    ),
    env: str = typer.Option(None, "--env", help="The environment whose current version to write."),
    name: str = typer.Option(
        None,
        "--name",
        help="One adapter: DIR/current is its bundle (default: every adapter "
        "ENV runs, each in DIR/adapters/NAME).",
    ),
    check: bool = typer.Option(
        False, "--check", help="Only re-hash DIR's bundle against its signed manifest (offline)."
    ),
) -> None:
    """Write the bundles of what an environment runs into DIR atomically (one per adapter,
    or --name's alone), or --check one adapter's bundle for drift."""
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
    if name is not None:
        result = serving.sync(settings(ctx).open(), env, directory, name=name)
        d = result.deployment
        typer.echo(
            f"{directory}/current is {d.adapter} (deployment #{d.seq} of {env}, digest "
            f"{d.artifact_digest[:16]}…{', reused' if result.reused else ''})"
        )
        return
    synced = serving.sync_environment(settings(ctx).open(), env, directory)
    for result in synced.synced:
        d = result.deployment
        typer.echo(
            f"{directory}/{serving.ADAPTERS}/{d.name}/current is {d.adapter} (deployment "
            f"#{d.seq} of {env}, digest {d.artifact_digest[:16]}…"
            f"{', reused' if result.reused else ''})"
        )
    for taken_out in synced.taken_out:
        typer.echo(
            f"{directory}/{serving.ADAPTERS}/{taken_out}: {env} no longer runs it; taken out"
        )


def monitor(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    name: str = typer.Option(None, "--name", help="The adapter, when ENV runs several."),
    json_: bool = JSON_OPTION,
) -> None:
    """Re-run the deployed version's policy suites and compare with the results it was
    promoted on; a regression exits 1 and is recorded as an alert."""
    from loraledger.policies.monitor import monitor as run_monitor

    opts = settings(ctx)
    report = run_monitor(opts.open(), env, actor=opts.actor, name=name)
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
