"""Overview: what each environment runs, pending reviews, monitoring alerts, and the
audit chain verified on load."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from loraledger.dashboard import queries, ui
from loraledger.registry import Registry
from loraledger.registry.models import AuditReport


@st.cache_resource
def _verified_heads() -> dict[str, tuple[int, str]]:
    """The audit head verified last, per registry, for this server process: each load
    verifies the events after it (the first load, the whole chain)."""
    return {}


def verify_chain(registry: Registry) -> AuditReport:
    heads = _verified_heads()
    key = str(registry.root.resolve())
    report = registry.verify_audit(since=heads.get(key))
    heads[key] = (report.head_seq, report.head_hash)
    return report


def render() -> None:
    st.title("Overview")
    registry = ui.read(ui.registry)
    environments = list(ui.read(ui.policy).policy.environments)
    columns = st.columns(len(environments))
    for column, environment in zip(columns, environments, strict=True):
        deployed = ui.read(registry.deployments.current, environment)
        with column.container(border=True):
            st.subheader(environment)
            if deployed is None:
                st.write("Nothing deployed yet.")
                continue
            st.metric("Running", deployed.adapter)
            st.caption(
                f"digest `{ui.short(deployed.artifact_digest, 16)}` · "
                f"{deployed.action} #{deployed.seq} by **{deployed.created_by}** since "
                f"{deployed.created_at:%Y-%m-%d %H:%M:%S} UTC"
            )

    st.subheader("Audit chain")
    try:
        with st.spinner("Verifying the audit chain…"):
            report = verify_chain(registry)
    except Exception as error:  # a VerificationError is the finding to show, in red
        st.error(f"The audit chain does NOT verify: {error}")
    else:
        st.success(
            f"Verified: {report.head_seq} events, head `{ui.short(report.head_hash, 16)}`, "
            f"{report.checkpoints_verified} new signed checkpoints checked "
            f"({report.events} new events) in {report.seconds * 1000:.0f} ms."
        )

    st.subheader("Pending reviews")
    pending = ui.read(queries.pending_reviews, registry)
    if pending:
        st.dataframe(pd.DataFrame(pending), hide_index=True, width="stretch")
        st.caption("Open one on the Review page to see its gate check and decide.")
    else:
        st.write("No version is waiting: every checked version runs where it was checked for.")

    st.subheader("Monitoring alerts")
    alerts = ui.read(queries.alerts, registry)
    if alerts:
        for alert in alerts:
            payload = alert["payload"]
            regressed = "; ".join(
                f"{suite}: {', '.join(tasks)}" for suite, tasks in payload["regressed"].items()
            )
            st.warning(
                f"#{alert['seq']} {alert['created_at']:%Y-%m-%d %H:%M} UTC, "
                f"{alert['subject']} running {payload['adapter']}: regression in {regressed}"
            )
    else:
        st.write("No alerts: `loraledger monitor` found no regression.")


render()
