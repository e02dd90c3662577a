"""``loraledger audit``: the tamper-evident event log."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ._app import JSON_OPTION, emit_json, emit_table, new_app, settings

app = new_app("The tamper-evident audit log.")


@app.command()
def log(
    ctx: typer.Context,
    actor: str = typer.Option(None, "--actor", help="Only events by this identity."),
    action: str = typer.Option(None, "--action", help="Only this action, e.g. adapter.register."),
    subject: str = typer.Option(None, "--subject", help="Only this subject, e.g. adapter:x@v1."),
    limit: int = typer.Option(None, "--limit", min=1, max=10**9, help="Only the newest N events."),
    json_: bool = JSON_OPTION,
) -> None:
    """List audit events, oldest first."""
    events = (
        settings(ctx)
        .open()
        .audit_events(
            actor=actor, action=action, subject=subject, limit=limit, newest_first=limit is not None
        )
    )
    events.sort(key=lambda e: e.seq)
    if json_:
        emit_json(events)
        return
    emit_table(
        ("seq", "time (UTC)", "actor", "action", "subject", "hash"),
        (
            (
                str(e.seq),
                f"{e.created_at:%Y-%m-%d %H:%M:%S}",
                e.actor,
                e.action,
                e.subject,
                e.hash[:12],
            )
            for e in events
        ),
    )


@app.command()
def verify(
    ctx: typer.Context,
    expect_head: str = typer.Option(
        None,
        "--expect-head",
        metavar="SEQ:HASH",
        help="A head recorded earlier (`audit head`) that the log must still contain.",
    ),
    against: list[Path] = typer.Option(
        None,
        "--against",
        metavar="FILE",
        help="An artifact kept from earlier (an evidence pack, a serving directory or its "
        "deployment.json, an approval or deployment record printed with --json) whose audit "
        "head and record the registry must still hold. Repeatable.",
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="With --expect-head: verify only the events after that head and the rows they "
        "recorded (plus each table's row count); a full run checks every older row too.",
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Recompute the hash chain, check every signed checkpoint, and check every row that
    indexes a signed record against it."""
    from loraledger.errors import UsageError
    from loraledger.policies import witness
    from loraledger.registry.audit import parse_head
    from loraledger.registry.trust import root_of

    expected = parse_head(expect_head) if expect_head else None
    witnesses = [w for path in against or () for w in witness.of_file(path)]
    if quick and expected is None:
        raise UsageError("--quick needs --expect-head SEQ:HASH: the head verified last")
    registry = settings(ctx).open()
    if quick:
        assert expected is not None
        report = registry.verify_audit(since=expected)
    else:
        report = registry.verify_audit(expect_head=expected)
    started = time.perf_counter()
    records = (
        registry.verify_records_since(expected[0])
        if quick and expected
        else registry.verify_records()
    )
    witness.check(registry, witnesses)
    report = report.model_copy(
        update={
            "records_verified": records,
            "seconds": report.seconds + time.perf_counter() - started,
        }
    )
    if json_:
        emit_json(report)
        return
    rows = ", ".join(f"{count} {table}" for table, count in records.items())
    typer.echo(
        f"Audit log verified: {report.events} events, {report.checkpoints_verified} signed "
        f"checkpoints, head #{report.head_seq} {report.head_hash}; rows match their signed "
        f"records ({rows}{', quick: since #' + str(expected[0]) if quick and expected else ''})"
        + (f"; it holds what {len(against)} kept artifact(s) saw" if against else "")
    )
    with registry.db.read() as conn:
        root = root_of(registry.history(conn))
    if root is not None:
        how = {
            "pinned": "as pinned by --trust-root",
            "known": "as this machine first saw it",
            "first use": "trusted on first use (remembered on this machine); pin it with "
            "`loraledger trust export > root.json` and --trust-root root.json",
        }[registry.root_trusted or "first use"]
        typer.echo(f"Root: {root.name} (key {root.key_fingerprint}), {how}")


@app.command()
def head(ctx: typer.Context, json_: bool = JSON_OPTION) -> None:
    """Print the chain head as SEQ:HASH; keep it elsewhere to detect truncation later."""
    seq, digest = settings(ctx).open().audit_head()
    if json_:
        emit_json({"seq": seq, "hash": digest})
        return
    typer.echo(f"{seq}:{digest}")
