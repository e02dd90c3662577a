"""``loraledger eval``, ``compare``, ``suites`` and ``evals``: suites run on signed
adapters, results bound to their digests, and the paired verdict between versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._app import JSON_OPTION, emit_json, emit_table, new_app, settings

suites_app = new_app("Evaluation suites: folders of lm-eval task YAMLs over local JSONL.")
evals_app = new_app("Stored evaluation runs: metrics, every scored sample, and why.")

SUITE_OPTION = typer.Option(
    ..., "--suite", help="A built-in suite name (see `loraledger suites list`) or a suite folder."
)


def eval_command(
    ctx: typer.Context,
    refs: list[str] = typer.Argument(
        ..., help="Adapter versions (NAME@vN or NAME for the latest) and/or base:NAME."
    ),
    suite: str = SUITE_OPTION,
    limit: int = typer.Option(
        None, "--limit", min=1, max=10**9, help="Only the first N samples per task."
    ),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, max=4096, help="Rows per forward pass."
    ),
    seed: int = typer.Option(1234, "--seed", help="lm-eval's random, numpy and torch seeds."),
    quantization: str = typer.Option(
        "none",
        "--quantization",
        help="For bare bases evaluated without adapters: nf4, fp4 or none. With adapters, "
        "the base is quantized as their training runs recorded.",
    ),
    dtype: str = typer.Option(
        None,
        "--dtype",
        help="Compute dtype: float32, bfloat16, float16, or auto (the base checkpoint's, as "
        "plain lm_eval loads it). Default: the suite's setting, else auto.",
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Run a suite on adapter versions (and bare bases), loading the base only once."""
    from loraledger.harness.evaluate import EvalOptions, evaluate

    opts = settings(ctx)

    def announce(index: int, total: int, subject: Any) -> None:
        if not json_:
            typer.echo(f"[{index + 1}/{total}] {subject.ref} ...", err=True)

    runs = evaluate(
        opts.open(),
        refs,
        suite,
        actor=opts.actor,
        options=EvalOptions(
            batch_size=batch_size,
            limit=limit,
            seed=seed,
            quantization=quantization,
            compute_dtype=dtype,
        ),
        on_subject=announce,
    )
    if json_:
        emit_json([r.model_copy(update={"samples": ()}) for r in runs])
        return
    first = runs[0]
    typer.echo(f"Suite {first.suite_name} ({first.suite_kind}), digest {first.suite_digest[:16]}…")
    emit_table(
        ["subject", "task", "metric", "value", "± stderr", "samples", "run"],
        [
            [
                run.subject.ref,
                m.task,
                m.metric if m.filter == "none" else f"{m.metric},{m.filter}",
                f"{m.value:.3f}",
                "" if m.stderr is None else f"{m.stderr:.3f}",
                str(m.sample_count),
                run.id[:8],
            ]
            for run in runs
            for m in run.metrics
        ],
    )
    judged = first.settings.get("judge")
    if judged:
        from loraledger.harness.judge_check import accuracy_line

        typer.echo(f"Samples {accuracy_line(judged)} (loraledger suites judge-check)")


def compare_command(
    ctx: typer.Context,
    new: str = typer.Argument(..., help="The candidate: NAME@vN or base:NAME."),
    old: str = typer.Argument(
        None, help="What it is compared with: NAME@vN or base:NAME (or use --against)."
    ),
    suite: str = SUITE_OPTION,
    against: str = typer.Option(
        None, "--against", help="Compare with what this environment runs, e.g. production."
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the tests."),
    fail_on_regression: bool = typer.Option(
        False, "--fail-on-regression", help="Exit 1 when any task regressed (for CI)."
    ),
    all_categories: bool = typer.Option(
        False, "--categories", help="List every category's verdict, not only those that moved."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Paired verdict per task between two subjects' newest runs on a suite, and per
    category of the samples (Holm-corrected)."""
    from loraledger.errors import NothingDeployed, UsageError
    from loraledger.harness.compare import compare

    opts = settings(ctx)
    registry = opts.open()
    if (old is None) == (against is None):
        raise UsageError("compare with one thing: OLD, or --against ENV")
    if against is not None:
        if new.startswith("base:"):
            raise UsageError(
                "--against compares an adapter version with its own track's; name an "
                "adapter version NAME@vN, or compare a base with OLD"
            )
        name = registry.adapters.get(new).name  # against the same adapter's track
        deployed = registry.deployments.current(against, name)
        if deployed is None:
            raise NothingDeployed(
                f"{against} runs no version of {name} yet; there is nothing to compare with"
            )
        old = deployed.adapter
    result = compare(registry, new, old, suite, actor=opts.actor, alpha=alpha)
    if json_:
        emit_json(result)
    else:
        typer.echo(
            f"{result.new_subject} vs {result.old_subject} on {result.suite_name} "
            f"(digest {result.suite_digest[:16]}…, alpha {result.alpha:g}): {result.verdict}"
        )
        emit_table(
            [
                "task",
                "metric",
                "old",
                "new",
                "effect [95% CI]",
                "p",
                "p (Holm)",
                "test",
                "verdict",
                "flipped",
            ],
            [
                [
                    r.task,
                    r.metric,
                    f"{r.old_mean:.3f}",
                    f"{r.new_mean:.3f}",
                    f"{r.effect:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
                    f"{r.p_value:.3g}",
                    "" if r.adjusted_p is None else f"{r.adjusted_p:.3g}",
                    r.test,
                    r.verdict,
                    f"+{len(r.flipped['improved'])} -{len(r.flipped['regressed'])}",
                ]
                for r in result.results
            ],
        )
        for r in result.results:
            if r.flipped["regressed"]:
                worse = ", ".join(r.flipped["regressed"][:10])
                typer.echo(f"  {r.task} {r.metric}: worse on {worse}")
        _category_verdicts(registry, result, all_categories)
        typer.echo(f"Comparison {result.id} stored.")
    if fail_on_regression and result.verdict == "regression":
        raise typer.Exit(1)


def _category_verdicts(registry: Any, result: Any, every: bool) -> None:
    """The comparison per category: those that changed significantly after Holm's
    correction (or every one with ``every``)."""
    from loraledger.harness.categories import category_comparisons

    new, old = registry.evaluations.get(result.new_run), registry.evaluations.get(result.old_run)
    found = category_comparisons(new, old, alpha=result.alpha)
    if not found:
        return
    moved = [c for c in found if every or c.verdict != "no significant change"]
    families = len({(c.task, c.metric) for c in found})
    typer.echo(
        f"Per category ({len(found)} categories in {families} task metrics, Holm-corrected "
        f"within each): {len([c for c in found if c.verdict != 'no significant change'])} "
        "changed significantly"
    )
    if moved:
        emit_table(
            ["task", "metric", "category", "n", "old", "new", "p", "p (Holm)", "verdict"],
            [
                [c.task, c.metric, c.category, str(c.n), f"{c.old_mean:.3f}",
                 f"{c.new_mean:.3f}", f"{c.p_value:.3g}", f"{c.adjusted_p:.3g}", c.verdict]
                for c in moved
            ],
        )  # fmt: skip


@suites_app.command("list")
def list_suites(json_: bool = JSON_OPTION) -> None:
    """The built-in suites (benchmarks, then policies)."""
    from loraledger.harness.suites import list_suites as all_suites

    found = all_suites()
    if json_:
        emit_json([_suite_dict(s) for s in found])
        return
    emit_table(
        ["suite", "kind", "tasks", "digest", "description"],
        [
            [s.name, s.kind, ", ".join(s.task_names), s.digest[:16] + "…", s.description]
            for s in found
        ],
    )


@suites_app.command("show")
def show_suite(
    suite: str = typer.Argument(..., help="A built-in suite name or a suite folder."),
    json_: bool = JSON_OPTION,
) -> None:
    """A suite's tasks, files and run settings, and how to run it with plain lm_eval."""
    from loraledger.harness.suites import find_suite

    found = find_suite(suite)
    rules = found.rules_used()  # and every sample names a registered scoring rule
    if json_:
        emit_json({**_suite_dict(found), "scoring_rules": rules})
        return
    typer.echo(f"{found.name} ({found.kind}): {found.description}")
    typer.echo(f"  folder  {found.directory}")
    typer.echo(f"  digest  {found.digest}")
    typer.echo(f"  chat template {found.apply_chat_template}, system {found.system_instruction!r}")
    for task in found.tasks:
        typer.echo(
            f"  task {task.name} ({task.output_type}): {', '.join(task.data_files.values())}"
        )
    if rules:
        used = ", ".join(f"{name} ({count})" for name, count in rules.items())
        typer.echo(f"  scoring rules (samples): {used}")
    flags = " --apply_chat_template" if found.apply_chat_template else ""
    if found.system_instruction:
        flags += f' --system_instruction "{found.system_instruction}"'
    typer.echo(
        f"Plain lm-eval: cd {found.directory} && lm_eval --model hf --model_args "
        f"pretrained=BASE_DIR[,peft=ADAPTER_DIR] --include_path . --tasks {found.name}{flags}"
    )


@suites_app.command("import")
def import_prompts(
    source: Path = typer.Argument(..., help="A CSV, JSONL or Parquet file with a `prompt` column."),
    kind: str = typer.Option(
        ..., "--kind", help="refusal (harmful requests) or over-refusal (safe look-alikes)."
    ),
    name: str = typer.Option(..., "--name", help="The suite's name (its folder's name too)."),
    out: Path = typer.Option(Path("."), "--out", help="Where the suite folder goes."),
    system: str = typer.Option(None, "--system", help="A system instruction for every prompt."),
    judge: str = typer.Option(
        "rules", "--judge", help="The refusal judge: rules, or minilm (a model judge)."
    ),
) -> None:
    """Turn a file of prompts into a policy suite scored by a refusal judge."""
    from loraledger.harness.importing import import_suite

    suite = import_suite(
        source, kind=kind, name=name, out=out, system_instruction=system, judge=judge
    )
    (task,) = suite.tasks
    rules = suite.rules_used()
    count = sum(rules.values())
    typer.echo(
        f"Wrote suite {suite.name} to {suite.directory}: task {task.name}, {count} samples "
        f"({', '.join(rules)}), digest {suite.digest[:16]}…"
    )
    typer.echo(f"Next: loraledger eval REF --suite {suite.directory}")


@suites_app.command("judge-check")
def judge_check(
    ctx: typer.Context,
    judges: list[str] = typer.Option(
        None,
        "--judge",
        help="A judge: rules, minilm, or a suite (name or folder) whose judge to check. "
        "Repeat to compare judges on the same answers. [default: rules]",
    ),
    labels: Path = typer.Option(
        None, "--labels", help="A JSONL file of labelled answers (default: the project's set)."
    ),
    confidence: float = typer.Option(0.95, "--confidence", min=0.5, max=0.999),
    json_: bool = JSON_OPTION,
) -> None:
    """How far a refusal judge can be trusted: its precision, recall and agreement
    with labelled answers, with intervals, and where it goes wrong. Judges compared are
    measured on the same answers, none of which any of them learned from."""
    from loraledger.harness.judge_check import DEFAULT_LABELS, check_judges

    opts = settings(ctx)
    reports = check_judges(judges or ["rules"], lambda: opts.open(), labels or DEFAULT_LABELS,
                           confidence)  # fmt: skip
    if json_:
        emit_json([report.as_dict() for report in reports] if judges else reports[0].as_dict())
        return
    level = f"{confidence * 100:g}% Wilson intervals"
    for report in reports:
        typer.echo(f"{report.judge} on {report.labels} (sha256 {report.labels_sha256[:16]}…), "
                   f"{level}")  # fmt: skip
        if report.left_out:
            typer.echo(f"  ({report.left_out} answers left out: a judge learned from them)")
        typer.echo(f"  precision {report.precision}   (of the answers it calls refusals)")
        typer.echo(f"  recall    {report.recall}   (of the refusals, found)")
        typer.echo(f"  agreement {report.agreement}")
        styles = report.by_style.items()
        emit_table(
            ["style", "agreement", "right", "of"],
            [[name, f"{r.value:.3f}", str(r.hits), str(r.of)] for name, r in styles],
        )
        for miss in report.misses:
            typer.echo(f"  wrong on {miss['id']} ({miss['style']}, labelled {miss['label']}): "
                       f"{miss['reason']}")  # fmt: skip


@suites_app.command("judge-train")
def judge_train(
    ctx: typer.Context,
    model: str = typer.Option(
        ..., "--model", help="A registered base model (NAME or NAME@vN) to embed answers with."
    ),
    out: Path = typer.Option(..., "--out", help="The head's JSON file, for a suite's judge."),
    labels: Path = typer.Option(
        None, "--labels", help="A JSONL file of labelled answers (default: the project's set)."
    ),
    share: float = typer.Option(
        0.6, "--share", min=0.1, max=0.9, help="The share of the labels to learn from."
    ),
) -> None:
    """Train an embedding judge's head on part of a labelled set; the rest stays unseen,
    for `judge-check`."""
    from loraledger.harness.judge_check import DEFAULT_LABELS, train_judge_head

    head = train_judge_head(settings(ctx).open(), model, labels or DEFAULT_LABELS, out, share)
    typer.echo(
        f"Wrote {out}: a head over {model}'s embeddings, learned from "
        f"{len(head['trained_on'])} labelled answers. Name it in a suite's "
        "metadata.loraledger.judge: {kind: embedding, model: " + model + ", head: FILE}; "
        "check it: loraledger suites judge-check --judge SUITE --judge rules"
    )


@evals_app.command("list")
def list_runs(
    ctx: typer.Context,
    subject: str = typer.Argument(None, help="Only runs of NAME@vN or base:NAME."),
    suite: str = typer.Option(None, "--suite", help="Only runs of this suite."),
    json_: bool = JSON_OPTION,
) -> None:
    """Evaluation runs, oldest first."""
    runs = settings(ctx).open().evaluations.list(subject, suite)
    if json_:
        emit_json(runs)
        return
    emit_table(
        ["run", "subject", "suite", "status", "samples", "headline", "finished", "by"],
        [
            [
                r.id[:8],
                r.subject.ref,
                r.suite_name,
                r.status,
                str(r.sample_count),
                "; ".join(f"{m.task} {m.metric} {m.value:.2f}" for m in r.metrics[:3]),
                r.finished_at.strftime("%Y-%m-%d %H:%M"),
                r.created_by,
            ]
            for r in runs
        ],
    )


@evals_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="A run id or its first characters."),
    samples: bool = typer.Option(False, "--samples", help="List every scored sample."),
    failed: bool = typer.Option(False, "--failed", help="List the samples that failed."),
    json_: bool = JSON_OPTION,
) -> None:
    """One run, checked against its audit event: what ran, on what, and every result."""
    run = settings(ctx).open().evaluations.get(run_id)
    if json_:
        emit_json(run)
        return
    out = typer.echo
    out(f"Run {run.id}: {run.subject.ref} on {run.suite_name} -- {run.status}")
    out(f"  artifact digest {run.subject.artifact_digest}")
    out(
        f"  base {run.subject.base_name}@v{run.subject.base_version} "
        f"({run.subject.base_digest[:16]}…), "
        f"{run.quantization.get('method')} quantization, {run.compute_dtype} compute"
    )
    out(f"  suite digest {run.suite_digest}")
    out(f"  lm-eval {run.lm_eval_version}, seed {run.seed}, settings {run.settings}")
    out(f"  by {run.created_by}, {run.started_at:%Y-%m-%d %H:%M:%S} - {run.finished_at:%H:%M:%S}")
    if run.error:
        out(f"  error: {run.error}")
    for m in run.metrics:
        stderr = "" if m.stderr is None else f" ± {m.stderr:.3f}"
        out(f"  {m.task} {m.metric}: {m.value:.3f}{stderr} (n={m.sample_count})")
    _category_table(run)
    shown = [s for s in run.samples if samples or (failed and s.passed is False)]
    for s in shown:
        mark = {True: "pass", False: "FAIL", None: "    "}[s.passed]
        out(f"  [{mark}] {s.task} {s.sample_key}: {s.reason}")
        out(f"         answer: {s.output[:160]!r}")


def _category_table(run: Any) -> None:
    """The run's metrics per category of its samples, with 95% Wilson intervals."""
    from loraledger.harness.categories import category_results

    found = category_results(run)
    if not found:
        return
    typer.echo("  per category (95% Wilson interval for pass/fail metrics):")
    emit_table(
        ["task", "metric", "category", "n", "value", "interval"],
        [
            [c.task, c.metric, c.category, str(c.n), f"{c.mean:.3f}",
             "" if c.low is None else f"[{c.low:.3f}, {c.high:.3f}]"]
            for c in found
        ],
    )  # fmt: skip


def _suite_dict(suite: Any) -> dict[str, Any]:
    return {
        "name": suite.name,
        "kind": suite.kind,
        "description": suite.description,
        "directory": str(suite.directory),
        "digest": suite.digest,
        "tasks": suite.task_names,
        "files": suite.files,
        "apply_chat_template": suite.apply_chat_template,
        "system_instruction": suite.system_instruction,
    }


__all__ = ["compare_command", "eval_command", "evals_app", "suites_app"]
