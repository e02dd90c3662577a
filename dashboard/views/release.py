"""Promote, roll back and retire -- one adapter's track in one environment (a cell of the
overview's release matrix, ``?env=E&name=N``): each guarded by the library (role, gate,
approvals, signature re-verified at that moment) behind a confirmation step; a rollback
and a retirement need a reason. The environment's full deployment history is below."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from loraledger.dashboard import ui
from loraledger.policies.deployments import promote, retire, rollback, rollback_targets
from loraledger.registry import Registry
from loraledger.registry.models import Deployment, running_after

from loraledger.terminal import printable


def history(registry: Registry, environment: str) -> list[Deployment]:
    """Shows the history; returns it (oldest first)."""
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
                    "adapter": d.name,
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
    return entries


def adapter_picker(entries: list[Deployment]) -> str:
    """The adapter (track) to act on: one that ran in the environment, newest first
    (pre-selected from ``?name=``)."""
    names = list(dict.fromkeys(d.name for d in reversed(entries)))
    wanted = st.query_params.get("name")
    index = names.index(wanted) if wanted in names else 0
    return str(st.selectbox("Adapter", names, index=index, key="release_name"))


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


def rollback_form(environment: str, name: str, entries: list[Deployment]) -> None:
    st.subheader(f"Roll {name} back in {environment}")
    earlier = [d.adapter for d in rollback_targets(entries, name)]
    if not earlier:
        st.write(f"No earlier version of {name} ran here: there is nothing to roll back to.")
        return
    with st.form("rollback", clear_on_submit=True, enter_to_submit=False):
        target = st.selectbox(
            "Put back", earlier, help="Default: the version that ran before the current one."
        )
        reason = st.text_input("Reason (required, recorded with the rollback)")
        sure = st.checkbox(f"I confirm: roll {name} in {environment} back to the version above")
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
        name=name,
        reason=reason.strip(),
        actor=user.identity,
        to=target,
    )
    if done is not None:
        ui.flash(
            f"{environment} rolled back to {done.adapter} (deployment #{done.seq}, digest "
            f"{ui.short(done.artifact_digest, 16)}); its other adapters are as they were."
        )


def retire_form(environment: str, name: str, entries: list[Deployment]) -> None:
    current = running_after(entries).get(name)
    if current is None:
        return
    st.subheader(f"Retire {name} from {environment}")
    with st.form("retire", clear_on_submit=True, enter_to_submit=False):
        reason = st.text_input("Reason (required, recorded with the retirement)")
        sure = st.checkbox(
            f"I confirm: {environment} stops running {name} ({current.adapter}); its other "
            "adapters stay"
        )
        go = st.form_submit_button("Retire", type="primary")
    if not go:
        return
    if not (reason.strip() and sure):
        st.error("A retirement needs a reason and the confirmation.")
        return
    done = ui.act(retire, ui.registry(), name, environment, reason=reason.strip(),
                  actor=ui.user().identity)  # fmt: skip
    if done is not None:
        ui.flash(f"{environment} no longer runs {name} (retired {done.adapter}, #{done.seq}).")


def render() -> None:
    st.title("Promote, roll back, retire")
    ui.show_flash()
    registry = ui.read(ui.registry)
    environment = ui.environment_picker("release_env")
    user = ui.user()
    if user.may_release:
        promote_form(environment)
    else:
        st.info(
            f"As an {user.role.value} you can read the history; reviewers and admins promote "
            "roll back and retire."
        )
    entries = history(registry, environment)
    if user.may_release and entries:
        name = adapter_picker(entries)
        rollback_form(environment, name, entries)
        retire_form(environment, name, entries)


ui.run_page(render)
