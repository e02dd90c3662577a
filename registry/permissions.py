"""Who may do what: every action the product takes, by name, and the one table of the
roles that may take it.

``Registry.act_as(actor, Action.X)`` checks the acting identity against this table (and
records an ``access.refused`` event naming the action when it may not), each change
re-checks it inside its transaction, and the dashboard shows a control only to the roles
the table lets use it. docs/governance.md prints the table (a test keeps the two equal).
An approval's role also depends on the environment's policy (``approvals: {role: ...}``):
the table bounds it, the policy narrows it.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Final

from .models import Role


class Action(enum.StrEnum):
    """An action, named as its audit events and refusals name it."""

    IDENTITY_CREATE = "identity.create"
    IDENTITY_REVOKE = "identity.revoke"
    IDENTITY_KEY_ADD = "identity.key_add"
    IDENTITY_KEY_RETIRE = "identity.key_retire"
    POLICY_SET = "policy.set"
    DATASET_REGISTER = "dataset.register"
    BASE_REGISTER = "base.register"
    ADAPTER_REGISTER = "adapter.register"
    DERIVE = "derive"
    TRAIN = "train"
    EVAL = "eval"
    EVAL_RECORD = "eval.record"
    EVAL_COMPARE = "eval.compare"
    MONITOR = "monitor"
    GATE_CHECK = "gate.check"
    APPROVE = "approve"
    REJECT = "reject"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    RETIRE = "retire"
    EVIDENCE_EXPORT = "evidence.export"


_ADMIN, _ENGINEER, _REVIEWER, _AUDITOR = Role.ADMIN, Role.ENGINEER, Role.REVIEWER, Role.AUDITOR
_BUILD = frozenset({_ENGINEER, _ADMIN})
_EVALUATE = frozenset({_ENGINEER, _REVIEWER, _ADMIN})
_DECIDE = frozenset({_REVIEWER, _ADMIN})

PERMISSIONS: Final[Mapping[Action, frozenset[Role]]] = MappingProxyType(
    {
        Action.IDENTITY_CREATE: frozenset({_ADMIN}),
        Action.IDENTITY_REVOKE: frozenset({_ADMIN}),
        Action.IDENTITY_KEY_ADD: frozenset({_ADMIN}),
        Action.IDENTITY_KEY_RETIRE: frozenset({_ADMIN}),
        Action.POLICY_SET: frozenset({_ADMIN}),
        Action.DATASET_REGISTER: _BUILD,
        Action.BASE_REGISTER: _BUILD,
        Action.ADAPTER_REGISTER: _BUILD,
        Action.DERIVE: _EVALUATE,
        Action.TRAIN: _BUILD,
        Action.EVAL: _EVALUATE,
        Action.EVAL_RECORD: _EVALUATE,
        Action.EVAL_COMPARE: _EVALUATE,
        Action.MONITOR: _EVALUATE,
        Action.GATE_CHECK: frozenset({_ENGINEER, _REVIEWER, _AUDITOR, _ADMIN}),
        Action.APPROVE: _DECIDE,
        Action.REJECT: _DECIDE,
        Action.PROMOTE: _DECIDE,
        Action.ROLLBACK: _DECIDE,
        Action.RETIRE: _DECIDE,
        Action.EVIDENCE_EXPORT: frozenset({_AUDITOR, _REVIEWER, _ADMIN}),
    }
)


# Actions that record what someone looked at (a gate check is the evidence a reviewer
# was shown; an export is logged), as opposed to changing what ships.
READING: Final = frozenset({Action.GATE_CHECK, Action.EVIDENCE_EXPORT})


def roles_for(action: Action) -> frozenset[Role]:
    """The roles that may take ``action``."""
    return PERMISSIONS[action]


def allowed(role: Role, action: Action) -> bool:
    return role in PERMISSIONS[action]


def only_reads(role: Role) -> bool:
    """Whether every action ``role`` may take is a reading one (an auditor's)."""
    return all(a in READING for a, roles in PERMISSIONS.items() if role in roles)


def resolve(needs: Action | Collection[Role] | None) -> frozenset[Role] | None:
    """The roles a check asks for: an action's, or an explicit set (a policy's)."""
    if needs is None:
        return None
    if isinstance(needs, Action):
        return PERMISSIONS[needs]
    return frozenset(needs)


def table_markdown() -> str:
    """The table as docs/governance.md shows it."""
    roles = (_ENGINEER, _REVIEWER, _AUDITOR, _ADMIN)
    lines = [
        "| action | " + " | ".join(r.value for r in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for action, allowed_roles in PERMISSIONS.items():
        marks = " | ".join("yes" if r in allowed_roles else "" for r in roles)
        lines.append(f"| `{action.value}` | {marks} |")
    return "\n".join(lines)


__all__ = [
    "PERMISSIONS",
    "READING",
    "Action",
    "allowed",
    "only_reads",
    "resolve",
    "roles_for",
    "table_markdown",
]
