"""Driving the real dashboard: ``loraledger dashboard`` started as a process on 127.0.0.1,
and Debian's Chromium (``/usr/bin/chromium``) driven by Playwright. Screenshots go to
``test-artifacts/dashboard/`` (or ``$LORALEDGER_TEST_ARTIFACTS``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.dashboard.conftest import PASSWORD, Site

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(
    os.environ.get("LORALEDGER_TEST_ARTIFACTS")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
)
TIMEOUT_MS = 90_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(server: subprocess.Popen[Any], url: str, timeout: float = 120) -> None:
    """Until Streamlit's health endpoint answers (or the server exits: RuntimeError)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.3)


@contextmanager
def dashboard(site: Site, cwd: Path | None = None) -> Iterator[str]:
    """``loraledger dashboard`` on a free port (started in ``cwd``); yields its address
    once it answers."""
    port = free_port()
    log = site.root.parent / f"dashboard-{port}.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "loraledger", "--registry", str(site.address),
             "--keys-dir", str(site.keys), "dashboard", "--port", str(port),
             "--policy", str(site.policy)],
            stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_until_serving(server, url)
            except RuntimeError as error:
                raise RuntimeError(f"{error}: {log.read_text()}") from None
            yield url
        except BaseException:
            print(f"--- the dashboard's log ({log}), last 60 lines:")
            print("\n".join(log.read_text().splitlines()[-60:]))
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        except BaseException:  # what each open page showed, for the failure's report
            for n, context in enumerate(browser.contexts):
                for m, page in enumerate(context.pages):
                    print(f"failure screenshot: {shot(page, f'FAILED-{n}-{m}')}")
            raise
        finally:
            browser.close()


def signed_in(browser: Any, url: str, user: str, password: str = PASSWORD) -> Any:
    """A new browser context (its own cookies) with ``user`` signed in, on the Overview."""
    page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    enter_credentials(page, user, password)
    page.get_by_role("heading", name="Overview").first.wait_for()
    settle(page)
    return page


def enter_credentials(page: Any, user: str, password: str = PASSWORD) -> None:
    page.get_by_role("textbox", name="User name").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


RENDERED = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-stale="true"]')"""


def settle(page: Any) -> None:
    """Wait until Streamlit has finished the run: no 'running' indicator and no stale
    element, twice in a row a moment apart (a rerun may follow the first)."""
    for _ in range(2):
        page.wait_for_timeout(300)
        page.wait_for_function(RENDERED, polling=50)


def go(page: Any, title: str) -> None:
    page.get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).first.wait_for()
    settle(page)


def fill(page: Any, label: str, value: str) -> None:
    field = page.get_by_role("textbox", name=label, exact=True)
    field.fill(value)
    field.press("Enter" if field.evaluate("e => e.tagName") == "INPUT" else "Tab")
    settle(page)


def click(page: Any, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    settle(page)


def shown(locator: Any, timeout_ms: int = 60_000) -> None:
    """Wait until exactly one element matches: a result message appears when the run
    that the click started has finished, which on a loaded machine can be after
    ``settle`` saw the page idle (the click's rerun had not begun yet)."""
    from playwright.sync_api import expect

    expect(locator).to_have_count(1, timeout=timeout_ms)


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def problems(page: Any) -> list[str]:
    """Exceptions and raw database errors on screen (there must be none)."""
    found = [e.inner_text() for e in page.locator('[data-testid="stException"]').all()]
    body = page.inner_text("body")
    found += [
        word for word in ("Traceback", "duckdb", "DuckDB", "Conflicting lock") if word in body
    ]
    return found
