"""Promote and roll back: each guarded by the library (role, gate, approvals, signature
re-verified at that moment) behind a confirmation step; a rollback needs a reason. The
environment's full deployment history is below."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from loraledger.dashboard import ui
from loraledger.policies.deployments import promote, rollback
from loraledger.registry import Registry

from loraledger.terminal import printable


def history(registry: Registry, environment: str) -> list[str]:
    """Shows the history; returns the versions that ran there, newest first."""
    st.subheader(f"Deployment history of {environment}")
    entries = ui.read(registry.deployments.history, environment)
    if not entries:
        st.write(f"Nothing was ever deployed to {environment}.")
        return []
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "#": d.seq,
                    "version": d.adapter,
                    "digest": ui.short(d.artifact_digest, 16),
                    "action": d.action,
                    "by": d.created_by,
                    "when (UTC)": d.created_at,
                    "why": printable(d.reason),
                    "approvals": len(d.approval_ids),
                }
                for d in reversed(entries)
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    return list(dict.fromkeys(d.adapter for d in reversed(entries)))


def promote_form(environment: str) -> None:
    st.subheader(f"Promote to {environment}")
    with st.form("promote", clear_on_submit=True, enter_to_submit=False):
        ref = st.text_input("Version (NAME@vN)", value=st.query_params.get("ref", ""))
        sure = st.checkbox(
            f"I confirm: deploy this version to {environment} (the gate is checked again now)"
        )
        go = st.form_submit_button("Promote", type="primary")
    if not go:
        return
    if not (ref.strip() and sure):
        st.error("Name the version and tick the confirmation.")
        return
    user = ui.user()
    done = ui.act(
        promote,
        ui.registry(),
        ref.strip(),
        environment,
        actor=user.identity,
        policy=ui.config().policy,
    )
    if done is not None:
        ui.flash(
            f"{environment} now runs {done.adapter} (deployment #{done.seq}, digest "
            f"{ui.short(done.artifact_digest, 16)}, {len(done.approval_ids)} approvals)."
        )


def rollback_form(environment: str, ran_there: list[str]) -> None:
    st.subheader(f"Roll {environment} back")
    earlier = ran_there[1:]
    if not earlier:
        st.write("No earlier version ran here: there is nothing to roll back to.")
        return
    with st.form("rollback", clear_on_submit=True, enter_to_submit=False):
        target = st.selectbox(
            "Put back", earlier, help="Default: the version that ran before the current one."
        )
        reason = st.text_input("Reason (required, recorded with the rollback)")
        sure = st.checkbox(f"I confirm: roll {environment} back to the version above")
        go = st.form_submit_button("Roll back", type="primary")
    if not go:
        return
    if not reason.strip():
        st.error("A rollback needs a reason: write why.")
        return
    if not sure:
        st.error("Tick the confirmation to roll back.")
        return
    user = ui.user()
    done = ui.act(
        rollback,
        ui.registry(),
        environment,
        reason=reason.strip(),
        actor=user.identity,
        to=target,
    )
    if done is not None:
        ui.flash(
            f"{environment} rolled back to {done.adapter} (deployment #{done.seq}, digest "
            f"{ui.short(done.artifact_digest, 16)})."
        )


def render() -> None:
    st.title("Promote and roll back")
    ui.show_flash()
    registry = ui.read(ui.registry)
    environment = ui.environment_picker("release_env")
    user = ui.user()
    if user.may_release:
        promote_form(environment)
    else:
        st.info(
            f"As an {user.role.value} you can read the history; reviewers and admins promote "
            "and roll back."
        )
    ran_there = history(registry, environment)
    if user.may_release:
        rollback_form(environment, ran_there)


ui.run_page(render)
