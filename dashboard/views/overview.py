"""Overview: what each environment runs, pending reviews, monitoring alerts, and the
audit chain verified on load."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st
from loraledger.dashboard import ui
from loraledger.registry import Registry, listings
from loraledger.registry.models import AuditReport, Deployment

from loraledger.errors import VerificationError

FULL_EVERY_S = 600.0


@st.cache_resource
def _verified_heads() -> dict[str, tuple[int, str, float]]:
    """Per registry, for this server process: the audit head verified last, and when the
    whole chain was last verified."""
    return {}


def verify_chain(registry: Registry) -> AuditReport:
    """The whole chain on the first load and every ``FULL_EVERY_S`` after; in between,
    the events after the head verified last (and that head's hash, unchanged)."""
    heads = _verified_heads()
    key = str(registry.root.resolve())
    known = heads.get(key)
    now = time.monotonic()
    if known is None or now - known[2] > FULL_EVERY_S:
        report = registry.verify_audit()
        heads[key] = (report.head_seq, report.head_hash, now)
    else:
        report = registry.verify_audit(since=known[:2])
        heads[key] = (report.head_seq, report.head_hash, known[2])
    return report


def _running(registry: Registry, environment: str) -> Deployment | VerificationError | None:
    """What ``environment`` runs, or why its signed history does not verify."""
    try:
        return registry.deployments.current(environment)
    except VerificationError as error:
        return error


def render() -> None:
    st.title("Overview")
    registry = ui.read(ui.registry)
    environments = list(ui.read(ui.policy).policy.environments)
    running = st.container()  # first on the page, filled once the chain is known

    st.subheader("Audit chain")
    report = ui.check(
        verify_chain,
        registry,
        failure="The audit chain does NOT verify",
        busy="Verifying the audit chain…",
    )
    if report is not None:
        st.success(
            f"Verified: {report.head_seq} events, head `{ui.short(report.head_hash, 16)}`; "
            f"this load checked {report.events} events and {report.checkpoints_verified} "
            f"signed checkpoints in {report.seconds * 1000:.0f} ms (the whole chain at least "
            f"every {FULL_EVERY_S / 60:.0f} minutes, the new events on every load)."
        )

    columns = running.columns(len(environments))
    for column, environment in zip(columns, environments, strict=True):
        with column.container(border=True):
            st.subheader(environment)
            if report is None:
                st.warning("Not shown: the audit chain below does not verify.")
                continue
            deployed = ui.read(_running, registry, environment)
            if isinstance(deployed, VerificationError):
                st.error(f"What {environment} runs does NOT verify: {deployed}")
                continue
            if deployed is None:
                st.write("Nothing deployed yet.")
                continue
            st.metric("Running", deployed.adapter)
            st.caption(
                f"digest `{ui.short(deployed.artifact_digest, 16)}` · "
                f"{deployed.action} #{deployed.seq} by **{deployed.created_by}** since "
                f"{deployed.created_at:%Y-%m-%d %H:%M:%S} UTC"
            )

    st.subheader("Pending reviews")
    pending = ui.read(listings.pending_reviews, registry)
    if pending:
        st.dataframe(pd.DataFrame(pending), hide_index=True, width="stretch")
        st.caption("Open one on the Review page to see its gate check and decide.")
    else:
        st.write("No version is waiting: every checked version runs where it was checked for.")

    st.subheader("Monitoring alerts")
    alerts = ui.read(listings.alerts, registry)
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


ui.run_page(render)
