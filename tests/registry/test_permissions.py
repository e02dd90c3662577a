"""The one permissions table: every action named, every check and control reading it,
and the docs showing it as it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from loraledger.dashboard.ui import User
from loraledger.registry import PERMISSIONS, Action, Registry, Role
from loraledger.registry.permissions import only_reads, table_markdown

from loraledger.errors import PermissionDenied
from tests.conftest import ADMIN, AUDITOR, ENGINEER, REVIEWER

ROOT = Path(__file__).resolve().parents[2]


def test_docs_show_the_table_as_it_is() -> None:
    assert table_markdown() in (ROOT / "docs" / "governance.md").read_text()


def test_every_action_has_roles_and_admins_may_take_each() -> None:
    assert set(PERMISSIONS) == set(Action)
    assert all(Role.ADMIN in roles for roles in PERMISSIONS.values())
    assert only_reads(Role.AUDITOR) and not only_reads(Role.ENGINEER)


def test_every_check_in_the_code_names_an_action() -> None:
    # act_as and change take an Action (or, for approvals, the policy's own roles)
    found = []
    for folder in ("registry", "policies", "harness", "trainer"):
        for path in (ROOT / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("act_as", "change")
                    and len(node.args) >= 2
                ):
                    found.append((path.name, ast.unparse(node.args[1])))
    assert found
    loose = [f for f in found if not f[1].startswith("Action.") and f[1] not in ("needs", "roles")]
    assert loose == []


@pytest.mark.parametrize(
    ("actor", "action"),
    [(AUDITOR, Action.PROMOTE), (ENGINEER, Action.APPROVE), (REVIEWER, Action.TRAIN)],
)
def test_a_refusal_names_the_action_and_the_roles_it_needs(
    registry: Registry, actor: str, action: Action
) -> None:
    needs = " or ".join(sorted(r.value for r in PERMISSIONS[action]))
    with pytest.raises(PermissionDenied, match=f"this needs {needs}$"):
        registry.act_as(actor, action)
    refused = registry.audit_events(action="access.refused", newest_first=True, limit=1)[0]
    assert refused.actor == actor and refused.payload["action"] == action.value
    registry.act_as(ADMIN, action)  # an admin may


@pytest.mark.parametrize(
    ("role", "decide", "release"),
    [
        (Role.AUDITOR, False, False),
        (Role.ENGINEER, True, False),  # shown, so that the library refuses it on screen
        (Role.REVIEWER, True, True),
        (Role.ADMIN, True, True),
    ],
)
def test_the_dashboard_controls_follow_the_table(role: Role, decide: bool, release: bool) -> None:
    user = User("u", "U", "u", role)
    assert (user.may_decide, user.may_release) == (decide, release)
