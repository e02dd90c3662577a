"""Review: the gate check rule by rule with its evidence, the decisions recorded so far
(counted, stale or refused, with the reason), and approve or reject with a comment --
signed with the reviewer's own key by the same library call as ``loraledger approve``."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from loraledger.dashboard import ui
from loraledger.policies.approvals import decide
from loraledger.policies.gates import check_gate
from loraledger.policies.tally import tally
from loraledger.registry import Registry
from loraledger.registry.models import GateCheck

from loraledger.terminal import printable


def rules_table(check: GateCheck) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "rule": rule.rule,
                "result": "pass" if rule.passed else "FAIL",
                "measured": str(rule.measured),
                "threshold": str(rule.bound),
                "evidence": ", ".join(f"{k}: {v}" for k, v in rule.evidence.items()),
                "message": rule.message,
                "from": rule.source or "",
            }
            for rule in check.rules
        ]
    )


def decisions(registry: Registry, check: GateCheck) -> None:
    st.subheader("Decisions recorded")
    name = check.adapter.rsplit("@v", 1)[0]
    rule = ui.read(ui.policy).rules_for(check.environment, name).policy.approvals
    if rule is None:
        st.write(f"The policy asks no approval for {check.environment}.")
        return
    version = ui.read(registry.adapters.get, check.adapter)
    judged = ui.read(tally, registry, version, check.environment, check.inputs_sha256, rule)
    shown = [(a, "counts") for a in judged.counted]
    shown += [(a, "REJECTION") for a in judged.rejections]
    shown += [(a, f"does not count: {why}") for a, why in judged.not_counted]
    rows = [
        {"by": a.signer, "decision": a.decision, "status": status,
         "comment": printable(a.comment), "when (UTC)": a.created_at}
        for a, status in shown
    ]  # fmt: skip
    st.caption(f"{len(judged.counted)} of {rule.count} approval(s) by distinct {rule.role}s count.")
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def decision_form(ref: str, environment: str) -> None:
    user = ui.user()
    st.subheader("Your decision")
    if not user.may_decide:
        st.info(f"As an {user.role.value} you read and export; decisions are for reviewers.")
        return
    with st.form("decision", clear_on_submit=True, enter_to_submit=False):
        comment = st.text_area("Comment (kept with the signed decision)")
        passphrase = st.text_input(
            "Passphrase of your signing key (only if it is encrypted)", type="password"
        )
        approve = st.form_submit_button("Approve", type="primary")
        reject = st.form_submit_button("Reject")
    if not (approve or reject):
        return
    if not comment.strip():
        st.error("Write a comment: it is kept with the signed decision.")
        return
    decided = ui.act(
        decide,
        ui.registry(passphrase or None),
        ref,
        environment,
        "approve" if approve else "reject",
        comment=comment.strip(),
        actor=user.identity,
        policy=ui.config().policy,
    )
    if decided is not None:
        st.session_state.pop("review_check", None)  # the evidence now includes the decision
        verb = "Approved" if decided.decision == "approve" else "Rejected"
        ui.flash(
            f"{verb} {decided.adapter} for {environment} as {decided.signer}, signed over "
            f"digest {ui.short(decided.artifact_digest, 16)} (approval {decided.id[:8]})."
        )


def render() -> None:
    st.title("Review")
    ui.show_flash()
    registry = ui.read(ui.registry)
    left, right = st.columns([2, 1])
    with left:
        ref = ui.ref_picker("Version to review (NAME@vN)", "review_ref")
    with right:
        environment = ui.environment_picker("review_env")
    if not ref:
        st.info("Name a version, or pick one from the pending reviews on the Overview.")
        return
    user = ui.user()
    # A gate check is recorded evidence (who looked at what): made once when the reviewer
    # opens a version, again on request or after a decision, not on every rerun.
    key = ("review_check", ref, environment)
    check = st.session_state.get("review_check")
    if st.button("Check the gate again", key="recheck") or not (
        isinstance(check, GateCheck) and st.session_state.get("review_check_key") == key
    ):
        check = ui.read(
            check_gate,
            registry,
            ref,
            environment,
            actor=user.identity,
            policy=ui.config().policy,
        )
        st.session_state["review_check"] = check
        st.session_state["review_check_key"] = key
    verdict = "passes" if check.passed else "does not pass"
    (st.success if check.passed else st.warning)(
        f"{check.adapter} {verdict} the {environment} gate (check {check.id[:8]}, policy "
        f"{ui.short(check.policy_sha256, 16)}, evidence {ui.short(check.inputs_sha256, 16)})."
    )
    st.dataframe(rules_table(check), hide_index=True, width="stretch")
    decision_form(ref, environment)
    decisions(registry, check)


ui.run_page(render)
