"""Nothing of the registry is reachable without sign-in: not a page's own address opened
first on a fresh server, not after a restart, not a page picked through the query string,
not Streamlit's other endpoints, and not a page script run on its own.

The registry holds an adapter with a distinctive name, deployed to staging, so any page
that rendered registry data would show it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import loraledger.dashboard
import pytest
from loraledger.dashboard.accounts import ACCOUNTS_FILE, add_user
from loraledger.dashboard.ui import ACCOUNTS_ENV, POLICY_ENV, User
from loraledger.registry import Role
from loraledger.registry.keys import KeyStore
from streamlit.testing.v1 import AppTest

from tests.conftest import (
    ADMIN,
    AUDITOR,
    ENGINEER,
    REVIEWER,
    clone_registry,
    init_registry,
    new_location,
    small_adapter,
)
from tests.dashboard.browser import (
    CHROMIUM,
    TIMEOUT_MS,
    chromium,
    dashboard,
    enter_credentials,
    settle,
    shot,
)
from tests.dashboard.conftest import PASSWORD, Site
from tests.policies.helpers import POLICY, deploy

NAME = "quokka-ledger-7731"
PAGES = ("overview", "version", "review", "release", "audit", "datasets")  # addresses
# Their scripts; none named after an installed package (AppTest puts the script's folder
# first on sys.path, where views/datasets.py would shadow Hugging Face's datasets).
SCRIPTS = {page: "dataset_versions" if page == "datasets" else page for page in PAGES}
VIEWS = Path(loraledger.dashboard.__file__).parent / "views"


@pytest.fixture(scope="module")
def quiet_site(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Site:
    """A small registry whose adapter ``NAME`` runs in staging, with sign-ins."""
    home = tmp_path_factory.mktemp("auth")
    keys = KeyStore(home / "keys")
    registry = init_registry(new_location(backend, home / "reg", request), home / "reg", keys)
    registry.identities.create(ADMIN, Role.ADMIN, actor=None)
    for name, role in ((ENGINEER, Role.ENGINEER), (REVIEWER, Role.REVIEWER),
                       (AUDITOR, Role.AUDITOR)):  # fmt: skip
        registry.identities.create(name, role, actor=ADMIN)
    version = registry.adapters.register(small_adapter(home / "adapter"), NAME, actor=ENGINEER)
    deploy(registry, "staging", version.ref)
    accounts = registry.root / ACCOUNTS_FILE
    for user in (REVIEWER, AUDITOR):
        add_user(accounts, user, identity=user, password=PASSWORD)
    (home / "policy.yaml").write_text(POLICY)
    return Site(registry.root, home / "keys", accounts, home / "policy.yaml", registry.address)


def markers(site: Site) -> list[str]:
    """Strings that only registry data contains."""
    version = site.registry().adapters.get(f"{NAME}@v1")
    return [NAME, version.digest[:12]]


@pytest.fixture
def wired(quiet_site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The environment ``loraledger dashboard`` gives the Streamlit server."""
    monkeypatch.setenv("LORALEDGER_REGISTRY", str(quiet_site.address))
    monkeypatch.setenv("LORALEDGER_KEYS_DIR", str(quiet_site.keys))
    monkeypatch.setenv(ACCOUNTS_ENV, str(quiet_site.accounts))
    monkeypatch.setenv(POLICY_ENV, str(quiet_site.policy))
    yield quiet_site


def everything_shown(app: AppTest) -> str:
    """Every element's protobuf as text (values, labels, options, data frames)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            found.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(app._tree)
    return "\n".join(found)


def test_no_page_folder_streamlit_would_discover() -> None:
    # Streamlit serves every script in a folder named pages/ beside the entry script as
    # a page of its own, without running the entry script (where sign-in is).
    assert not (VIEWS.parent / "pages").exists()
    assert sorted(p.stem for p in VIEWS.glob("[!_]*.py")) == sorted(SCRIPTS.values())


@pytest.mark.parametrize("page", PAGES)
def test_a_page_script_run_on_its_own_shows_no_registry_data(wired: Site, page: str) -> None:
    app = AppTest.from_file(str(VIEWS / f"{SCRIPTS[page]}.py"), default_timeout=60)
    app.query_params["ref"] = f"{NAME}@v1"
    app.run()
    assert not app.exception, app.exception
    shown = everything_shown(app)
    assert not [m for m in markers(wired) if m in shown], shown
    assert not app.title and not app.button and not app.text_input
    assert [w.value for w in app.warning] == ["Sign in first: open the dashboard's address."]


def test_signed_in_the_same_script_shows_the_registry(wired: Site) -> None:
    # The control for the two tests around it: what they look for is there once signed in.
    app = AppTest.from_file(str(VIEWS / "overview.py"), default_timeout=60)
    app.session_state["ledger_user"] = User(AUDITOR, "Otto", AUDITOR, Role.AUDITOR)
    app.run()
    assert NAME in everything_shown(app) and not app.warning


@pytest.mark.parametrize("page", PAGES)
def test_a_page_shows_nothing_once_the_identity_is_revoked(
    wired: Site, page: str, tmp_path: Path
) -> None:
    registry = clone_registry(wired.registry(), tmp_path / "reg")
    registry.identities.revoke(AUDITOR, actor=ADMIN, reason="left the company")
    app = AppTest.from_file(str(VIEWS / f"{SCRIPTS[page]}.py"), default_timeout=60)
    app.session_state["ledger_user"] = User(AUDITOR, "Otto", AUDITOR, Role.AUDITOR)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORALEDGER_REGISTRY", str(registry.address))
        app.run()
    assert not app.exception, app.exception
    assert not [m for m in markers(wired) if m in everything_shown(app)]
    assert [e.value for e in app.error] == [
        f"Your registry identity {AUDITOR!r} is revoked; ask an admin for a new one."
    ]
    assert "ledger_user" not in app.session_state


def signed_out_views(browser: Any, addresses: list[str], site: Site) -> Any:
    """Each address opened in a new browser context of its own (no cookie), all loading at
    once: the sign-in form, and nothing of the registry, once each run has finished.
    Returns the last page."""
    pages = []
    for address in addresses:
        page = browser.new_context().new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(address, wait_until="commit")
        pages.append(page)
    for address, page in zip(addresses, pages, strict=True):
        page.get_by_role("textbox", name="User name").wait_for(timeout=60_000)
        settle(page)  # anything a page script would render comes with its run
        html = page.content()
        assert not [m for m in markers(site) if m in html], address
        body = page.inner_text("body")
        for title in ("Overview", "Adapter version", "Audit and trace", "Datasets", "Promote"):
            assert title not in body, (address, title)
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0, address
    for page in pages[:-1]:
        page.context.close()
    return pages[-1]


PAGE_ADDRESSES = [f"/{page}" for page in PAGES]
QUERY_ADDRESSES = [
    f"/version?ref={NAME}@v1",
    "/?page=audit",
    "/?page=pages/audit.py",
    f"/audit?page=overview&ref={NAME}@v1",
]


def http_get(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make installs it)")
def test_no_address_and_no_endpoint_serves_registry_data_without_sign_in(
    backend: str, quiet_site: Site, tmp_path: Path
) -> None:
    # Restarted where a .streamlit/config.toml asks for what the dashboard pins off.
    hostile = tmp_path / "elsewhere"
    (hostile / ".streamlit").mkdir(parents=True)
    (hostile / ".streamlit" / "config.toml").write_text(
        "[server]\nenableStaticServing = true\nenableAgentApi = true\n"
        'trustedUserHeaders = {"X-Email" = "email"}\n'
    )
    # Restarted under a hostile config once, on DuckDB: Streamlit reads its config before
    # any backend is touched. Fresh on both: a PostgreSQL registry is opened at sign-in
    # (to find the accounts beside its store), so its signed-out pages are checked too.
    attempts = (("fresh", None), ("restarted", hostile))
    for attempt, cwd in attempts if backend == "duckdb" else attempts[:1]:
        with dashboard(quiet_site, cwd) as url, chromium() as browser:
            # Each page's own address first, before any other request; then the query
            # strings that pick a page.
            for batch in (PAGE_ADDRESSES, QUERY_ADDRESSES):
                shown = signed_out_views(browser, [url + a for a in batch], quiet_site)
            shot(shown, f"auth-{attempt}-signed-out")
            endpoints(url, quiet_site)
            if attempt == "restarted":
                continue
            # Warm: someone signs in; the same addresses still show only the sign-in.
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            enter_credentials(page, AUDITOR)
            page.get_by_role("heading", name="Overview").first.wait_for()
            signed_out_views(browser, [url + a for a in PAGE_ADDRESSES + QUERY_ADDRESSES],
                             quiet_site)  # fmt: skip


def endpoints(url: str, site: Site) -> None:
    """What the server answers without a session: health, and nothing of the registry."""
    assert http_get(f"{url}/_stcore/health") == (200, "ok")
    seen = {
        path: http_get(f"{url}{path}")
        for path in (
            "/_stcore/host-config", "/_stcore/metrics", "/_stcore/script-health-check",
            "/app/static/app.py", "/app/static/../views/audit.py", "/media/x.json",
            "/component/x", "/_stcore/agent/openapi.json", "/_stcore/upload_file/x/y",
            "/views/audit.py", "/registry.duckdb",
        )
    }  # fmt: skip
    seen["agent"] = http_get(
        f"{url}/_stcore/agent/interact", "POST", json.dumps({"action": "snapshot"}).encode()
    )
    for path, (_status, text) in seen.items():
        assert not [m for m in markers(site) if m in text], path
        assert "def render" not in text and "streamlit as st" not in text, path  # no source
    index = http_get(f"{url}/")
    for path in (
        "/app/static/app.py",
        "/app/static/../views/audit.py",
        "/views/audit.py",
        "/registry.duckdb",
        "/_stcore/script-health-check",
        "/_stcore/upload_file/x/y",
    ):
        assert seen[path] in (index, (400, "Bad Request")), path  # never a file  # fmt: skip
    assert seen["/media/x.json"] == (404, "File not found")
    assert seen["/component/x"][0] == 404
    assert seen["agent"][0] == 403 and "does not serve the agent API" in seen["agent"][1]
