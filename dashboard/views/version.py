"""Adapter version: provenance, the signature checked live, evaluation results with a
chart across versions and a chart per category of each suite's samples, and the
comparison against production with the flipped samples side by side."""

from __future__ import annotations

from dataclasses import asdict

import altair as alt
import pandas as pd
import streamlit as st
from loraledger.dashboard import ui
from loraledger.harness.categories import category_results
from loraledger.registry import Registry, listings
from loraledger.registry.models import AdapterVersion


def _default_ref(registry: Registry) -> str:
    running = registry.deployments.everywhere()
    for environment in ("production", *sorted(running)):
        if environment in running:
            return next(iter(running[environment].values())).adapter
    return ""


def provenance(registry: Registry, version: AdapterVersion) -> None:
    st.subheader("Provenance")
    run = ui.read(registry.adapters.training_run, version.ref)
    left, right = st.columns(2)
    left.markdown(
        f"**Digest** `{version.digest}`  \n**Registered** {version.created_at:%Y-%m-%d %H:%M} "
        f"UTC by **{version.created_by}**  \n**Signed by** {version.signer} (key "
        f"`{ui.short(version.signer_key_fingerprint, 16)}`)  \n**Files** {version.file_count}, "
        f"{version.total_bytes:,} bytes"
    )
    if run is None:
        right.info("Registered without a training run: made outside LoRA Ledger's trainer.")
        return
    code = run.code
    commit = code.commit or "not in git"
    quantization = ", ".join(f"{k}={v}" for k, v in run.quantization.model_dump().items())
    right.markdown(
        f"**Base** {run.base_ref} (`{ui.short(run.base_digest, 16)}`)  \n"
        f"**Quantization** {quantization}  \n"
        f"**Compute dtype** {run.compute_dtype}  \n"
        f"**Code** `{commit}`{' (dirty tree)' if code.dirty else ''}  \n"
        f"**Seed** {run.seed} · **Hardware** {run.device}"
    )
    st.dataframe(
        pd.DataFrame([d.model_dump(mode="json") for d in run.datasets]),
        hide_index=True,
        width="stretch",
    )
    with st.expander("Training config, libraries and hardware"):
        st.json(
            {
                "config": run.config,
                "libraries": run.libraries,
                "hardware": run.hardware.model_dump(mode="json"),
            },
            expanded=False,
        )


def signature(registry: Registry, version: AdapterVersion) -> None:
    st.subheader("Signature, checked now")
    report = ui.check(
        registry.adapters.verify,
        version.ref,
        failure="Does NOT verify",
        busy="Re-hashing the files and checking the signature…",
    )
    if report is None:
        return
    st.success(
        f"Signature valid (OpenSSF model-signing, signer {report.signer}); "
        f"{report.files_verified} files, {report.bytes_verified:,} bytes re-hashed in "
        f"{report.seconds * 1000:.0f} ms."
    )


def evaluations(registry: Registry, version: AdapterVersion) -> None:
    st.subheader("Evaluations")
    runs = ui.read(registry.evaluations.list, subject=version.ref)
    rows = [
        {
            "suite": run.suite_name,
            "task": m.task,
            "metric": m.metric,
            "value": m.value,
            "stderr": m.stderr,
            "samples": m.sample_count,
            "run": run.id[:8],
            "status": run.status,
            "finished (UTC)": run.finished_at,
        }
        for run in runs
        for m in run.metrics
    ]
    if not rows:
        st.info(f"No evaluation yet: run `loraledger eval {version.ref} --suite SUITE`.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    history = pd.DataFrame(ui.read(listings.metrics_over_versions, registry, version.name))
    if history["version"].nunique() < 2:
        st.caption("The chart across versions appears once a second version is evaluated.")
        return
    history["series"] = history["task"] + " · " + history["metric"]
    history["low"] = history["value"] - 1.96 * history["stderr"].fillna(0)
    history["high"] = history["value"] + 1.96 * history["stderr"].fillna(0)
    base = alt.Chart(history).encode(
        x=alt.X("version:O", title=f"{version.name} version"), color="series:N"
    )
    chart = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title="metric (95% interval)"), tooltip=["series", "version", "value"]
    ) + base.mark_errorbar().encode(y="low:Q", y2="high:Q")
    st.altair_chart(chart, width="stretch")


def categories(registry: Registry, version: AdapterVersion) -> None:
    """Each suite's newest complete run per category of its samples: the pass rate with
    its 95% Wilson interval, one row a category, one panel a task."""
    newest: dict[str, str] = {}
    for run in ui.read(registry.evaluations.list, subject=version.ref):
        if run.status == "complete":
            newest[run.suite_name] = run.id
    for suite, run_id in sorted(newest.items()):
        found = category_results(ui.read(registry.evaluations.get, run_id))
        if not found:
            continue
        st.markdown(f"**{suite}, per category** (run `{run_id[:8]}`, 95% Wilson interval)")
        table = pd.DataFrame([asdict(c) for c in found])
        bars = alt.Chart(table).encode(
            y=alt.Y("category:N", title=None),
            tooltip=["task", "metric", "category", "n", "mean", "low", "high"],
        )
        chart = (
            bars.mark_bar().encode(x=alt.X("mean:Q", title="mean", scale=alt.Scale(domain=[0, 1])))
            + bars.mark_errorbar().encode(x="low:Q", x2="high:Q")
        ).facet(row=alt.Row("task:N", title=None))
        st.altair_chart(chart)


def comparisons(registry: Registry, version: AdapterVersion) -> None:
    st.subheader("Compared with other versions")
    found = ui.read(registry.evaluations.comparisons, version.ref)
    if not found:
        st.info(f"No comparison recorded: `loraledger compare {version.ref} --against production`.")
        return
    for comparison in reversed(found):
        st.markdown(
            f"**{comparison.new_subject}** against **{comparison.old_subject}**, suite "
            f"{comparison.suite_name}: **{comparison.verdict}** "
            f"({comparison.created_at:%Y-%m-%d %H:%M} UTC, alpha {comparison.alpha})"
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "task": r.task,
                        "metric": r.metric,
                        "test": r.test,
                        "n": r.n,
                        "before": r.old_mean,
                        "after": r.new_mean,
                        "effect": r.effect,
                        "95% CI": f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
                        "p": r.p_value,
                        "p (Holm)": r.adjusted_p,
                        "verdict": r.verdict,
                    }
                    for r in comparison.results
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        for result in comparison.results:
            for direction, keys in result.flipped.items():
                if not keys:
                    continue
                with st.expander(f"{result.task}: {len(keys)} samples {direction}"):
                    st.dataframe(
                        pd.DataFrame(
                            ui.read(
                                listings.flipped_samples,
                                registry,
                                comparison.old_run,
                                comparison.new_run,
                                result.task,
                                keys,
                            )
                        ),
                        hide_index=True,
                        width="stretch",
                    )


def render() -> None:
    st.title("Adapter version")
    registry = ui.read(ui.registry)
    ref = ui.ref_picker("Version (NAME@vN)", "version_ref", ui.read(_default_ref, registry))
    if ref:
        version = ui.read(registry.adapters.get, ref)
        st.header(version.ref)
        provenance(registry, version)
        signature(registry, version)
        evaluations(registry, version)
        categories(registry, version)
        comparisons(registry, version)
    st.subheader("All versions")
    name_part = st.text_input("Name contains", key="versions_filter")
    offset, limit = ui.page_controls(
        ui.read(listings.adapter_versions, registry, name_part, 0, 1).total, "versions_page"
    )
    page = ui.read(listings.adapter_versions, registry, name_part, offset, limit)
    st.dataframe(pd.DataFrame(page.rows), hide_index=True, width="stretch")


ui.run_page(render)
