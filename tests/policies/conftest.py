"""Fixtures of the policy tests: the trained evaluation registry with a second reviewer
and both plain adapters evaluated, and a private copy of the demo policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.registry import Registry, Role

from tests.conftest import ADMIN, ENGINEER, backends_fixture
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)
from tests.policies.helpers import POLICY, use_policy

SECOND = "ruby"  # a second reviewer

backend = backends_fixture()  # every governance test on both backends


@pytest.fixture(scope="module")
def reg(eval_registry: Registry) -> Registry:
    eval_registry.identities.create(SECOND, Role.REVIEWER, actor=ADMIN)
    evaluate(eval_registry, list(PLAIN), "sanity", actor=ENGINEER, options=EvalOptions(limit=2))
    return eval_registry


@pytest.fixture
def policy(tmp_path: Path, reg: Registry) -> Path:
    """The tests' policy, in force in ``reg``."""
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return use_policy(reg, path)


def events(registry: Registry, action: str) -> list[object]:
    return registry.audit_events(action=action)
