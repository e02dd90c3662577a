"""Every page with Streamlit's AppTest (headless), signed in as real registry identities:
each action is the library's, refusals show with their reason, and the registry records
exactly what was done."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import loraledger.dashboard
import pytest
from loraledger.dashboard.ui import User
from loraledger.policies.approvals import decide
from loraledger.policies.deployments import promote
from loraledger.policies.gates import check_gate
from loraledger.policies.tally import verify_approval
from loraledger.registry import Registry, Role
from loraledger.registry.keys import KeyStore
from streamlit.testing.v1 import AppTest

from loraledger.errors import GateRefused, PermissionDenied
from tests.conftest import ADMIN, AUDITOR, ENGINEER, REVIEWER
from tests.dashboard.conftest import PASSWORD, SECOND, Site, prepared, site  # noqa: F401
from tests.harness.conftest import PLAIN
from tests.policies.helpers import deploy, use_policy
from tests.registry.helpers import refusals, sql

APP = str(Path(loraledger.dashboard.__file__).parent / "app.py")
V1, V2 = PLAIN


def page_as(site: Site, identity: str, page: str, **query: str) -> AppTest:
    """One page's script as a signed-in user (what app.py hands it after sign-in)."""
    app = AppTest.from_file(str(Path(APP).parent / "views" / f"{page}.py"), default_timeout=120)
    found = site.registry().identities.get(identity)
    app.session_state["ledger_user"] = User(identity, identity.title(), identity, found.role)
    for key, value in query.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, app.exception
    return app


def button(app: AppTest, label: str) -> object:
    found = [b for b in app.button if b.label == label]
    assert found, f"no button {label!r} among {[b.label for b in app.button]}"
    return found[0]


def labels(app: AppTest) -> list[str]:
    return [b.label for b in app.button]


def texts(app: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "success", "error", "warning", "info", "caption")
             for e in getattr(app, kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


def test_nothing_shows_before_sign_in(site: Site) -> None:
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert [t.label for t in app.text_input] == ["User name", "Password"]
    assert not app.title and "ledger_user" not in app.session_state
    assert not app.sidebar.children  # not even the page menu
    # A wrong password is refused on screen: tests/dashboard/test_browser.py (AppTest runs
    # the current page's script on its own after a form submit under st.navigation).


def test_overview_shows_the_chain_and_pending_reviews(site: Site) -> None:
    app = page_as(site, AUDITOR, "overview")
    assert app.title[0].value == "Overview"
    assert "Verified:" in app.success[0].value
    assert "Nothing deployed yet, and no version waits for review." in texts(app)
    deploy(site.registry(), "staging", V1)
    app.run()
    matrix = app.table[0].value
    assert list(matrix.columns) == ["staging", "production"]
    assert matrix.loc["faq-bot"].to_dict() == {"staging": "v1", "production": "—"}


def test_the_release_matrix_shows_each_adapter_in_each_environment(site: Site) -> None:
    registry = site.registry()
    deploy(registry, "staging", V1)
    deploy(registry, "staging", "wild@v1")
    deploy(registry, "production", "wild@v1")
    check_gate(registry, V2, "staging", actor=REVIEWER)  # v2 waits for review in staging
    app = page_as(site, AUDITOR, "overview")
    matrix = app.table[0].value
    assert matrix.to_dict("index") == {
        "faq-bot": {"staging": "v1 · review v2", "production": "—"},
        "wild": {"staging": "v1", "production": "v1"},
    }
    # each cell opens the release page on that environment and adapter
    app = page_as(site, REVIEWER, "release", env="staging", name="wild")
    assert app.selectbox[0].value == "staging" and app.selectbox[1].value == "wild"
    button(app, "Retire").click().run()
    assert "A retirement needs a reason and the confirmation." in app.error[-1].value
    app.text_input[-1].input("the wild experiment ended")  # (the last form: retire)
    app.checkbox[-1].check()
    button(app, "Retire").click().run()
    assert "staging no longer runs wild (retired wild@v1" in app.success[0].value
    running = site.registry().deployments.running("staging")
    assert list(running) == ["faq-bot"]  # the other adapter runs on
    matrix = page_as(site, AUDITOR, "overview").table[0].value
    assert matrix.loc["wild"].to_dict() == {"staging": "—", "production": "v1"}


def test_reviewer_approves_and_promotes(site: Site) -> None:
    before = site.registry().audit_head()[0]
    app = page_as(site, REVIEWER, "review", ref=V1)
    assert "does not pass the staging gate" in texts(app)
    rules = app.dataframe[0].value
    assert "approval" in " ".join(rules["rule"]) and "FAIL" in list(rules["result"])
    app.text_area[0].input("Sanity results hold; signed off.")
    button(app, "Approve").click().run()
    assert f"Approved {V1} for staging as {REVIEWER}" in app.success[0].value
    assert "1 of 1 approval(s)" in texts(app)
    app = page_as(site, REVIEWER, "release", ref=V1)
    app.checkbox[0].check()
    button(app, "Promote").click().run()
    assert f"staging now runs {V1}" in texts(app)
    registry = site.registry()
    assert registry.deployments.current("staging").adapter == V1  # type: ignore[union-attr]
    (approval,) = registry.approvals.list(V1, "staging")  # signed with rita's own key
    assert approval.signer == REVIEWER and verify_approval(registry, approval)
    assert approval.key_fingerprint == registry.identities.get(REVIEWER).key_fingerprint
    new = [e for e in registry.audit_events() if e.seq > before]
    assert [(e.actor, e.action) for e in new] == [
        (REVIEWER, "gate.check"),  # what the page showed when opened
        (REVIEWER, "gate.check"), (REVIEWER, "approval.approve"),  # the decision's own
        (REVIEWER, "gate.check"),  # the page again, after the decision
        (REVIEWER, "gate.check"), (REVIEWER, "deploy.promote"),
    ]  # fmt: skip


def test_the_trainers_self_approval_is_refused_on_screen(site: Site) -> None:
    app = page_as(site, ENGINEER, "review", ref=V1)
    app.text_area[0].input("I trained it, so it is fine.")
    button(app, "Approve").click().run()
    refused = app.error[-1].value
    assert refused.startswith("Refused:") and ENGINEER in refused
    assert site.registry().approvals.list(V1) == []
    assert refusals(site.registry())[-1][:2] == (ENGINEER, "approve")


def test_a_stale_approval_is_shown_and_not_counted(site: Site) -> None:
    registry = site.registry()
    decide(registry, V1, "staging", "approve", comment="ok", actor=REVIEWER, policy=site.policy)
    site.policy.write_text(site.policy.read_text().replace("min: 0", "min: 0.0"))
    use_policy(registry, site.policy, reason="a stricter bound")
    app = page_as(site, SECOND, "review", ref=V1)
    decisions = app.dataframe[-1].value
    assert list(decisions["by"]) == [REVIEWER]
    assert str(decisions["status"][0]).startswith("does not count:")
    assert "0 of 1 approval(s)" in texts(app)


def test_an_auditor_sees_no_write_action_and_a_crafted_one_is_refused(site: Site) -> None:
    app = page_as(site, AUDITOR, "review", ref=V1)
    assert "Approve" not in labels(app) and "Reject" not in labels(app)
    app = page_as(site, AUDITOR, "release", ref=V1)
    assert "Promote" not in labels(app) and "Roll back" not in labels(app)
    assert "As an auditor you can read the history" in texts(app)
    # What the hidden buttons would call, called as the auditor anyway: the library refuses.
    registry = site.registry()
    with pytest.raises(PermissionDenied):
        decide(registry, V1, "staging", "approve", comment="x", actor=AUDITOR, policy=site.policy)
    with pytest.raises(PermissionDenied):
        promote(registry, V1, "staging", actor=AUDITOR, policy=site.policy)
    assert [r[0] for r in refusals(registry)][-2:] == [AUDITOR, AUDITOR]


def test_rollback_needs_a_reason_and_a_confirmation(site: Site) -> None:
    registry = site.registry()
    deploy(registry, "staging", V1)
    deploy(registry, "staging", V2)
    app = page_as(site, REVIEWER, "release")
    assert app.selectbox[1].value == "faq-bot"  # the adapter: the only one that ran
    assert app.selectbox[2].value == V1  # the version before the current one
    button(app, "Roll back").click().run()
    assert "A rollback needs a reason" in app.error[-1].value
    next(
        t
        for t in app.text_input
        if t.label.startswith("Reason (required, recorded with the rollback")
    ).input("v2 answers worse on refunds")
    next(c for c in app.checkbox if c.label.startswith("I confirm: roll faq-bot")).check()
    button(app, "Roll back").click().run()
    assert f"staging rolled back to {V1}" in app.success[0].value
    current = site.registry().deployments.current("staging")
    assert current is not None and current.adapter == V1 and current.action == "rollback"
    assert current.reason == "v2 answers worse on refunds" and current.created_by == REVIEWER
    assert app.dataframe[0].value["action"][0] == "rollback"


def test_version_page_checks_the_signature_and_charts_versions(site: Site) -> None:
    app = page_as(site, AUDITOR, "version", ref=V2)
    assert app.header[0].value == V2
    assert any("Signature valid" in s.value for s in app.success)
    shown = texts(app)
    assert "tiny@v1" in shown and "**Seed** 2" in shown
    charts = app.get("vega_lite_chart")  # the metrics across versions, with intervals,
    assert len(charts) == 2  # and the sanity run per category of its questions
    assert "**sanity, per category** (run `" in shown
    assert f"**adapter:{V2}** against **adapter:{V1}**, suite sanity" in shown


def test_audit_page_filters_traces_and_proves_membership(site: Site) -> None:
    deploy(site.registry(), "staging", V1)
    app = page_as(site, AUDITOR, "audit")
    app.selectbox(key="audit_actor").select(ENGINEER).run()
    events = app.dataframe[0].value
    assert len(events) and set(events["actor"]) == {ENGINEER}
    button(app, "Trace").click().run()
    assert f"staging now: {V1}" in app.success[-1].value
    assert "every link verified" in app.success[-1].value
    graph = app.get("graphviz_chart")[0].proto.spec  # deployment → version → its sources
    assert "d -> n0;" in graph and 'n0 [label="deployment signature\\nstaging #1"' in graph
    assert "d -> n1;" in graph and 'n1 [label="adapter\\nfaq-bot@v1"' in graph
    assert graph.count(" -> ") == graph.count('[label="') - 1  # a tree: one parent each
    record = (site.root.parent / "faq.jsonl").read_text().splitlines()[0]
    app.text_input(key="prove_dataset").input("faq@v1")
    app.text_area(key="prove_record").input(record)
    button(app, "Check membership").click().run()
    assert "A member of faq@v1" in app.success[-1].value
    app.text_area(key="prove_record").input(json.dumps({"not": "in it"}))
    button(app, "Check membership").click().run()
    assert "is not in faq@v1" in app.warning[-1].value


def test_datasets_page_shows_pii_kinds_and_users(site: Site) -> None:
    app = page_as(site, AUDITOR, "dataset_versions")
    assert "faq@v1" in list(app.dataframe[0].value["dataset"])
    users = app.dataframe[-1].value
    assert set(users["adapter"]) >= {V1, V2}


HOLD_DUCKDB = (
    "import sys, time, duckdb; c = duckdb.connect(sys.argv[1] + '/registry.duckdb'); "
    "print('locked', flush=True); time.sleep(2); c.close()"
)
# PostgreSQL's readers wait for no writer; they do wait behind an exclusive table lock
# (a migration, a DBA's maintenance)
HOLD_POSTGRESQL = (
    "import sys, time, psycopg; c = psycopg.connect(sys.argv[1]); "
    "c.execute('LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE'); "
    "print('locked', flush=True); time.sleep(2); c.commit(); c.close()"
)


def test_a_lock_wait_is_hidden_behind_a_spinner(site: Site) -> None:
    app = page_as(site, AUDITOR, "overview")
    hold = HOLD_DUCKDB if isinstance(site.address, Path) else HOLD_POSTGRESQL
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(site.address)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    app.run()
    holder.wait()
    assert time.monotonic() - started > 1
    assert not app.exception and not app.error and app.title[0].value == "Overview"


def test_a_tampered_chain_shows_in_red_on_the_overview(site: Site) -> None:
    assert "Verified:" in page_as(site, AUDITOR, "overview").success[0].value
    deploy(site.registry(), "staging", V1)  # new events after the verified head
    sql(
        site.registry(),
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = (SELECT max(seq) FROM audit_events)",
    )
    app = page_as(site, AUDITOR, "overview")
    assert app.error[0].value.startswith("The audit chain does NOT verify: audit chain broken")


OIDC = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret-of-some-length",
    "client_id": "loraledger",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "https://idp.northwind.example/.well-known/openid-configuration",
}


def oidc_app(user: dict[str, object]) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.secrets["auth"] = OIDC
    app.user = user
    return app.run()


def test_oidc_sign_in_maps_the_providers_email_to_an_identity(site: Site) -> None:
    outsider = oidc_app({"is_logged_in": False})
    assert labels(outsider) == ["Sign in"] and not outsider.text_input  # no password form
    assert "ledger_user" not in outsider.session_state
    unknown = oidc_app({"is_logged_in": True, "email": "mallory@elsewhere.example"})
    assert "No dashboard user has the e-mail address" in unknown.error[0].value
    assert "ledger_user" not in unknown.session_state
    app = oidc_app({"is_logged_in": True, "email": "Otto@Northwind.example"})
    assert not app.exception, app.exception
    assert app.session_state["ledger_user"] == User(AUDITOR, "Otto", AUDITOR, Role.AUDITOR)


OTHER_HOST = """
import sys
from streamlit.testing.v1 import AppTest
from loraledger.dashboard.ui import User
from loraledger.registry import Role
app = AppTest.from_file(sys.argv[1], default_timeout=120)
app.session_state["ledger_user"] = User("rita", "Rita", "rita", Role.REVIEWER)
app.query_params["ref"] = sys.argv[2]
app.run()
app.text_area[0].input("Checked on the other host.")
next(b for b in app.button if b.label == "Approve").click().run()
print(app.success[0].value)
"""


def test_two_dashboard_processes_see_each_others_changes(site: Site) -> None:
    # A second dashboard process over the same registry (as on a second host) approves;
    # this one, open since before, shows the approval on its next run.
    here = page_as(site, SECOND, "review", ref=V1)
    assert "0 of 1 approval(s)" in texts(here)
    other = subprocess.run(
        [sys.executable, "-c", OTHER_HOST, str(Path(APP).parent / "views" / "review.py"), V1],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr[-3000:]
    assert f"Approved {V1} for staging as {REVIEWER}" in other.stdout
    here.run()
    assert "1 of 1 approval(s)" in texts(here)


def test_the_dashboard_signs_with_the_person_s_own_dashboard_key(
    site: Site, tmp_path: Path
) -> None:
    """rita's laptop key stays on her laptop; the dashboard host holds another key of
    hers, enrolled as hers (not as a second identity): what she approves there is hers,
    and she cannot approve again from her laptop."""
    laptop = tmp_path / "ritas-laptop"
    laptop.mkdir()
    shutil.move(site.keys / f"{REVIEWER}.pem", laptop / f"{REVIEWER}.pem")
    dashboard_key = KeyStore(site.keys).create(REVIEWER)
    site.registry().identities.add_key(
        REVIEWER, dashboard_key.public_key_pem, actor=ADMIN, label="dashboard"
    )
    app = page_as(site, REVIEWER, "review", ref=V1)
    app.text_area[0].input("Sanity results hold; signed off.")
    button(app, "Approve").click().run()
    assert f"Approved {V1} for staging as {REVIEWER}" in app.success[0].value
    (approval,) = site.registry().approvals.list(V1, "staging")
    assert (approval.signer, approval.key_fingerprint) == (REVIEWER, dashboard_key.fingerprint)
    on_laptop = Registry.open(site.address, keys=KeyStore(laptop))
    with pytest.raises(GateRefused, match="one person counts once"):
        decide(on_laptop, V1, "staging", "approve", comment="again", actor=REVIEWER)
