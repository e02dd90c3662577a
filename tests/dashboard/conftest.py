"""A real registry for the dashboard's tests: two trained versions of faq-bot on the tiny
base, each evaluated on the sanity suite and compared, with five people who can sign in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from loraledger.dashboard.accounts import ACCOUNTS_FILE, add_user
from loraledger.dashboard.ui import ACCOUNTS_ENV, POLICY_ENV
from loraledger.harness.compare import compare
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.registry import Registry, Role
from loraledger.registry.keys import KeyStore

from tests.conftest import (
    ADMIN,
    AUDITOR,
    ENGINEER,
    REVIEWER,
    backends_fixture,
    cloned_address,
)
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)
from tests.policies.helpers import POLICY, use_policy

SECOND = "ruby"
PASSWORD = "correct-horse-battery"
USERS = {ADMIN: ADMIN, ENGINEER: ENGINEER, REVIEWER: REVIEWER, SECOND: SECOND, AUDITOR: AUDITOR}


backend = backends_fixture()  # every dashboard test on both backends


@dataclass(frozen=True)
class Site:
    """A copy of the prepared registry (at ``address``, its files in ``root``), its keys,
    accounts and policy."""

    root: Path
    keys: Path
    accounts: Path
    policy: Path
    address: Path | str

    def registry(self) -> Registry:
        return Registry.open(self.address, keys=KeyStore(self.keys))


@pytest.fixture(scope="module")
def prepared(eval_registry: Registry) -> Registry:
    eval_registry.identities.create(SECOND, Role.REVIEWER, actor=ADMIN)
    evaluate(eval_registry, list(PLAIN), "sanity", actor=ENGINEER, options=EvalOptions(limit=4))
    compare(eval_registry, PLAIN[1], PLAIN[0], "sanity", actor=ENGINEER, n_resamples=999)
    accounts = eval_registry.root / ACCOUNTS_FILE
    for user, identity in USERS.items():
        add_user(accounts, user, identity=identity, password=PASSWORD, name=user.title(),
                 email=f"{user}@northwind.example")  # fmt: skip
    (eval_registry.root.parent / "policy.yaml").write_text(POLICY)
    use_policy(eval_registry, eval_registry.root.parent / "policy.yaml")
    return eval_registry


@pytest.fixture
def site(prepared: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A fresh copy per test (the dashboard writes), wired through the environment the
    way ``loraledger dashboard`` wires the Streamlit server."""
    home = shutil.copytree(prepared.root.parent, tmp_path / "site")
    found = Site(home / "reg", home / "keys", home / "reg" / ACCOUNTS_FILE, home / "policy.yaml",
                 cloned_address(prepared.address, home / "reg"))  # fmt: skip
    monkeypatch.setenv("LORALEDGER_REGISTRY", str(found.address))
    monkeypatch.setenv("LORALEDGER_KEYS_DIR", str(found.keys))
    monkeypatch.setenv(ACCOUNTS_ENV, str(found.accounts))
    monkeypatch.setenv(POLICY_ENV, str(found.policy))
    yield found
