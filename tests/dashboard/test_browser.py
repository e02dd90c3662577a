"""The dashboard in a real browser: Chromium driven by Playwright against
``loraledger dashboard`` on 127.0.0.1. A reviewer approves, promotes and rolls back; an
auditor traces production and sees no write action; the trainer's self-approval is
refused on screen; the registry shows exactly those events. Screenshots of every page are
saved (test-artifacts/dashboard/)."""

from __future__ import annotations

import pytest

from tests.conftest import AUDITOR, ENGINEER, REVIEWER
from tests.dashboard.browser import (
    CHROMIUM,
    chromium,
    click,
    dashboard,
    enter_credentials,
    fill,
    go,
    problems,
    settle,
    shot,
    shown,
    signed_in,
)
from tests.dashboard.conftest import Site, prepared, site  # noqa: F401  (fixtures)
from tests.harness.conftest import PLAIN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
    ),
]
V1, V2 = PLAIN
WILD = "wild@v1"


def approve(page: object, ref: str, comment: str) -> None:
    go(page, "Review")
    fill(page, "Version to review (NAME@vN)", ref)
    fill(page, "Comment (kept with the signed decision)", comment)
    click(page, "Approve")


def promote(page: object, ref: str) -> None:
    go(page, "Promote, roll back, retire")
    fill(page, "Version (NAME@vN)", ref)
    page.get_by_text("I confirm: deploy this version").click()  # type: ignore[attr-defined]
    click(page, "Promote")


def test_review_release_rollback_and_audit_in_chromium(site: Site) -> None:
    from tests.policies.helpers import deploy

    deploy(site.registry(), "staging", WILD)  # a second adapter runs beside faq-bot
    before = site.registry().audit_head()[0]
    with dashboard(site) as url, chromium() as browser:
        stranger = browser.new_page()
        stranger.goto(url)
        enter_credentials(stranger, REVIEWER, "not-the-password")
        stranger.get_by_text("Wrong user name or password.").wait_for()
        assert stranger.get_by_role("link", name="Review").count() == 0
        shot(stranger, "00-sign-in-refused")
        page = signed_in(browser, url, REVIEWER)
        shot(page, "01-overview-reviewer")
        approve(page, V1, "Sanity holds; approved for staging.")
        shown(page.get_by_text(f"Approved {V1} for staging as {REVIEWER}"))
        shot(page, "02-review-approved")
        promote(page, V1)
        shown(page.get_by_text(f"staging now runs {V1}"))
        approve(page, V2, "The new seed; approved for staging.")
        promote(page, V2)
        shot(page, "03-release-promoted")
        fill(page, "Reason (required, recorded with the rollback)", "v2 regressed on refunds")
        page.get_by_text("I confirm: roll faq-bot in staging back").click()
        click(page, "Roll back")
        shown(page.get_by_text(f"staging rolled back to {V1}"))
        shot(page, "04-release-rolled-back")
        # the release matrix: both adapters in staging; wild's cell opens its release page
        go(page, "Overview")
        matrix = page.get_by_role("table").first
        matrix.get_by_text("wild").wait_for()
        assert "faq-bot" in matrix.inner_text()
        shot(page, "04b-release-matrix")
        page.get_by_role("link", name="wild in staging").click()
        page.get_by_role("heading", name="Retire wild from staging").wait_for()
        settle(page)
        fill(page, "Reason (required, recorded with the retirement)", "the experiment ended")
        page.get_by_text("I confirm: staging stops running wild").click()
        click(page, "Retire")
        shown(page.get_by_text("staging no longer runs wild"))
        shot(page, "04c-release-retired")
        go(page, "Adapter version")
        fill(page, "Version (NAME@vN)", V2)
        page.get_by_text("Signature valid").wait_for()
        shot(page, "05-adapter-version")
        go(page, "Datasets")
        shot(page, "06-datasets")
        assert problems(page) == []

        trainer = signed_in(browser, url, ENGINEER)
        approve(trainer, V1, "I trained it; approving my own work.")
        refused = trainer.get_by_text("Refused:")
        shown(refused)
        assert ENGINEER in refused.inner_text()
        shot(trainer, "07-review-self-approval-refused")

        auditor = signed_in(browser, url, AUDITOR)
        shot(auditor, "08-overview-auditor")
        go(auditor, "Promote, roll back, retire")
        for action in ("Promote", "Roll back", "Retire", "Approve", "Reject"):
            assert auditor.get_by_role("button", name=action, exact=True).count() == 0
        # Straight to the page's address (a new session: signed in again by the cookie,
        # or by hand when the cookie was not kept): the same page, still read-only.
        auditor.goto(f"{url}/release")
        heading = auditor.get_by_role("heading", name="Promote, roll back, retire")
        sign_in_form = auditor.get_by_role("button", name="Sign in")
        heading.or_(sign_in_form).first.wait_for()
        if sign_in_form.count():
            enter_credentials(auditor, AUDITOR)
        heading.first.wait_for()
        settle(auditor)
        shot(auditor, "08b-release-by-address-auditor")
        assert auditor.get_by_role("button", name="Promote", exact=True).count() == 0
        assert auditor.get_by_role("button", name="Roll back", exact=True).count() == 0
        go(auditor, "Audit and trace")
        auditor.get_by_role("tab", name="Trace").click()
        click(auditor, "Trace")
        auditor.get_by_text("every link verified").wait_for()
        shot(auditor, "09-audit-trace")
        assert problems(auditor) == []

    registry = site.registry()
    done = [(e.actor, e.action) for e in registry.audit_events() if e.seq > before]
    assert [d for d in done if d[1] != "gate.check"] == [
        (REVIEWER, "approval.approve"), (REVIEWER, "deploy.promote"),
        (REVIEWER, "approval.approve"), (REVIEWER, "deploy.promote"),
        (REVIEWER, "deploy.rollback"), (REVIEWER, "deploy.retire"),
        (ENGINEER, "access.refused"),
    ]  # fmt: skip
    current = registry.deployments.current("staging")
    assert current is not None and current.adapter == V1 and current.action == "rollback"
    assert registry.verify_audit().head_seq == registry.audit_head()[0]
