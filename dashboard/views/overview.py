"""Overview: the release matrix (adapters as rows, environments as columns, each cell the
version running there and the versions waiting for review), pending reviews, monitoring
alerts, and the audit chain verified on load."""

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


def _running(registry: Registry, environment: str) -> dict[str, Deployment] | VerificationError:
    """What ``environment`` runs, by adapter name, or why its signed history does not
    verify."""
    try:
        return registry.deployments.running(environment)
    except VerificationError as error:
        return error


def release_matrix(
    environments: list[str],
    running: dict[str, dict[str, Deployment]],
    pending: list[dict[str, object]],
) -> pd.DataFrame:
    """Adapters as rows, environments as columns: each cell the version running there
    (— for none) and the versions checked for it and waiting for a decision."""
    waiting: dict[tuple[str, str], list[str]] = {}
    for review in pending:
        name, version = str(review["version"]).rsplit("@", 1)
        waiting.setdefault((name, str(review["environment"])), []).append(version)
    names = sorted({n for tracks in running.values() for n in tracks} | {n for n, _ in waiting})
    rows = []
    for name in names:
        row = {"adapter": name}
        for environment in environments:
            deployed = running.get(environment, {}).get(name)
            cell = deployed.adapter.rsplit("@", 1)[1] if deployed else "—"
            reviews = waiting.get((name, environment))
            row[environment] = cell + (f" · review {', '.join(reviews)}" if reviews else "")
        rows.append(row)
    return pd.DataFrame(rows, columns=["adapter", *environments])


def release_matrix_section(
    registry: Registry, environments: list[str], pending: list[dict[str, object]]
) -> None:
    """The matrix, an error per environment whose history does not verify, and a link to
    each adapter's cell on the release page (promote, roll back, retire)."""
    running: dict[str, dict[str, Deployment]] = {}
    for environment in [*environments, *ui.read(registry.deployments.environments)]:
        if environment in running:
            continue
        tracks = ui.read(_running, registry, environment)
        if isinstance(tracks, VerificationError):
            st.error(f"What {environment} runs does NOT verify: {tracks}")
            continue
        running[environment] = tracks
    shown = [*environments, *(e for e in running if e not in environments and running[e])]
    matrix = release_matrix(shown, running, pending)
    if matrix.empty:
        st.write("Nothing deployed yet, and no version waits for review.")
        return
    st.table(matrix.set_index("adapter"))
    st.caption(
        "Each cell: the version that environment runs of the adapter (— none), and the "
        "versions checked for it that wait for a decision. Open a cell to promote, roll "
        "back or retire:"
    )
    for name in matrix["adapter"]:
        cells = st.columns(len(shown) + 1)
        cells[0].markdown(f"**{name}**")
        for cell, environment in zip(cells[1:], shown, strict=True):
            with cell:
                ui.page_link(
                    "views/release.py", f"{name} in {environment}", env=environment, name=name
                )


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

    # read once: the matrix marks them all, the list below shows the newest 20
    pending = ui.read(listings.pending_reviews, registry, 200)
    with running:
        st.subheader("Release matrix")
        if report is None:
            st.warning("Not shown: the audit chain below does not verify.")
        else:
            release_matrix_section(registry, environments, pending)

    st.subheader("Pending reviews")
    if pending:
        st.dataframe(pd.DataFrame(pending[:20]), hide_index=True, width="stretch")
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
