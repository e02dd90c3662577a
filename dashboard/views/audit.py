"""Audit and trace: the event log with filters, the whole chain's verification, the trace
of any deployment (as of any moment) as a lineage view, a record's membership proof, and
downloads of the standard exports and the evidence pack."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, time
from pathlib import Path

import pandas as pd
import streamlit as st
from loraledger.dashboard import ui
from loraledger.policies.evidence import export_pack
from loraledger.policies.exports import DOCUMENTS
from loraledger.policies.trace import Trace, trace_environment, trace_version
from loraledger.registry import Registry, listings
from loraledger.registry.datasets import record_sha256

from loraledger.errors import InputError


def events(registry: Registry) -> None:
    actors, actions = ui.read(listings.audit_facets, registry)
    columns = st.columns(5)
    actor = columns[0].selectbox("Actor", ["(any)", *actors], key="audit_actor")
    action = columns[1].selectbox("Action", ["(any)", *actions], key="audit_action")
    subject = columns[2].text_input("Subject contains", key="audit_subject")
    since = columns[3].date_input("From (UTC)", value=None, key="audit_since")
    until = columns[4].date_input("Until (UTC)", value=None, key="audit_until")
    filters = {
        "actor": None if actor == "(any)" else actor,
        "action": None if action == "(any)" else action,
        "subject_part": subject or None,
        "since": datetime.combine(since, time.min) if since else None,
        "until": datetime.combine(until, time.max) if until else None,
    }
    total = ui.read(listings.audit_page, registry, **filters, offset=0, limit=0).total
    offset, limit = ui.page_controls(total, "audit_page")
    page = ui.read(listings.audit_page, registry, **filters, offset=offset, limit=limit)
    st.caption(f"{total} events match, newest first.")
    st.dataframe(pd.DataFrame(page.rows), hide_index=True, width="stretch")

    if st.button("Verify the whole chain now", key="verify_chain"):
        report = ui.check(
            registry.verify_audit,
            failure="The audit chain does NOT verify",
            busy="Recomputing every hash and checking every signed checkpoint…",
        )
        if report is not None:
            st.success(
                f"Verified all {report.events} events and {report.checkpoints_verified} "
                f"signed checkpoints in {report.seconds:.2f} s; head "
                f"#{report.head_seq} `{ui.short(report.head_hash, 16)}`."
            )


# What each kind of link hangs from in the lineage graph (the first kind present wins).
LINEAGE = {
    "adapter": ("deployment",),
    "deployment signature": ("deployment",),
    "training run": ("adapter",),
    "dataset": ("training run",),
    "base model": ("training run", "adapter"),
    "test-result attestation": ("evaluation",),
    "approval": ("gate check", "adapter"),
}


def lineage(trace: Trace) -> None:
    """The trace as a graph (deployment → version → its sources) and as a table."""
    if trace.complete:
        st.success(f"{trace.subject}: every link verified.")
    else:
        st.error(f"{trace.subject}: {sum(not link.verified for link in trace.links)} link(s) "
                 "do NOT verify.")  # fmt: skip
    lines = ["digraph { rankdir=LR; node [shape=box, style=rounded, fontsize=10];"]
    last: dict[str, str] = {}  # the newest node of each kind, parent of what follows it
    if trace.deployment is not None:
        label = f"deployment #{trace.deployment.seq}\\n{trace.deployment.environment}"
        lines.append(f'd [label="{label}"];')
        last["deployment"] = "d"
    for number, link in enumerate(trace.links):
        colour = "darkgreen" if link.verified else "red"
        label = f"{link.kind}\\n{link.ref}".replace('"', "'")
        lines.append(f'n{number} [label="{label}", color={colour}, fontcolor={colour}];')
        kinds = LINEAGE.get(link.kind, ("adapter",))
        parent = next((last[kind] for kind in kinds if kind in last), None)
        if parent is not None:
            lines.append(f"{parent} -> n{number};")
        last[link.kind] = f"n{number}"
    lines.append("}")
    st.graphviz_chart("\n".join(lines))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "link": link.kind,
                    "what": link.ref,
                    "verified": "yes" if link.verified else f"NO: {link.problem}",
                    "detail": json.dumps(link.detail, default=str)[:300],
                }
                for link in trace.links
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def trace_tab(registry: Registry) -> None:
    left, middle, right = st.columns(3)
    environment = left.selectbox(
        "Environment", list(ui.read(ui.policy).policy.environments), key="trace_env"
    )
    day = middle.date_input("As of day (UTC; empty: now)", value=None, key="trace_day")
    moment = right.time_input("As of time (UTC)", value=time(23, 59, 59), key="trace_time")
    ref = st.text_input("…or trace a version (NAME@vN) instead", key="trace_ref")
    if not st.button("Trace", type="primary", key="trace_go"):
        return
    if ref.strip():
        found = ui.act(trace_version, registry, ref.strip())
    else:
        at = datetime.combine(day, moment) if day else None
        found = ui.act(trace_environment, registry, environment, at)
    if found is not None:
        lineage(found)


def membership(registry: Registry) -> None:
    dataset = st.text_input("Dataset version (NAME@vN)", key="prove_dataset")
    text = st.text_area("The record, as JSON (one line of the JSONL file)", key="prove_record")
    if not st.button("Check membership", key="prove_go"):
        return
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        st.error(f"The record is not valid JSON: {error.msg} (line {error.lineno}, column "
                 f"{error.colno}).")  # fmt: skip
        return
    digest = record_sha256(record)
    try:
        with st.spinner("Building the inclusion proof…"):
            proof = registry.datasets.prove(dataset.strip(), digest)
    except InputError as error:
        st.warning(str(error))
        return
    st.success(
        f"A member of {proof.dataset}: line {proof.line}, leaf {proof.index} of {proof.size}; "
        f"the RFC 9162 inclusion proof verifies against root `{proof.merkle_root}`."
    )
    st.json(proof.model_dump(mode="json"), expanded=False)
    st.download_button(
        "Download the proof (JSON)",
        proof.model_dump_json(indent=2),
        file_name=f"{proof.dataset.replace('@', '-')}.proof.json",
        mime="application/json",
    )


def downloads(registry: Registry) -> None:
    st.markdown("**Standard documents of a version**")
    ref = st.text_input("Version (NAME@vN)", key="export_ref").strip()
    if ref:
        columns = st.columns(len(DOCUMENTS))
        for column, document in zip(columns, DOCUMENTS.values(), strict=True):
            text = ui.act(document.render, registry, ref)
            if text is not None:
                column.download_button(
                    document.name,
                    text,
                    file_name=document.file_for(ref),
                    mime=document.media_type,
                    help=document.help,
                )
    st.markdown("**Evidence pack of a deployment** (signed, verifiable offline)")
    environment = st.selectbox(
        "Environment", list(ui.read(ui.policy).policy.environments), key="pack_env"
    )
    if st.button("Build the evidence pack", key="pack_go"):
        user = ui.user()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"evidence-{environment}.tar.gz"
            written = ui.act(
                export_pack,
                registry,
                environment,
                out,
                actor=user.identity,
                policy_file=ui.config().policy,
            )
            if written is not None:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
                st.download_button(
                    "Download the evidence pack",
                    written.read_bytes(),
                    file_name=f"evidence-{environment}-{stamp}.tar.gz",
                    mime="application/gzip",
                    key="pack_download",
                )


def render() -> None:
    st.title("Audit and trace")
    registry = ui.read(ui.registry)
    tabs = st.tabs(["Events", "Trace", "Record membership", "Downloads"])
    with tabs[0]:
        events(registry)
    with tabs[1]:
        trace_tab(registry)
    with tabs[2]:
        membership(registry)
    with tabs[3]:
        downloads(registry)


ui.run_page(render)
