"""The registry's release policy as signed, versioned records (registry/policy_versions.py,
policies/release.py): set by admins only, read back checked, the version in force at any
moment, and which policy judges a decision."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from loraledger.policies.release import policy_in_force, resolve_policy, set_policy
from loraledger.registry import Registry
from loraledger.registry.audit import utcnow

from loraledger.errors import Conflict, InputError, PermissionDenied, PolicyNotInForce
from tests.conftest import ADMIN, REVIEWER

FIRST = "version: 1\nenvironments:\n  staging:\n    provenance: {signed: true}\n"
SECOND = FIRST + "    approvals: {count: 1, role: reviewer}\n"


def _file(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_versions_are_set_by_admins_signed_and_read_back_in_order(
    registry: Registry, tmp_path: Path
) -> None:
    assert registry.policies.history() == [] and policy_in_force(registry) is None
    first = _file(tmp_path, FIRST)
    with pytest.raises(PermissionDenied, match="this needs admin"):
        set_policy(registry, first, reason="mine", actor=REVIEWER)
    with pytest.raises(InputError, match="needs a reason"):
        set_policy(registry, first, reason=" ", actor=ADMIN)
    v1 = set_policy(registry, first, reason="provenance first", actor=ADMIN)
    with pytest.raises(Conflict, match="this policy is in force already"):
        set_policy(registry, first, reason="again", actor=ADMIN)
    between = utcnow()
    time.sleep(0.01)
    v2 = set_policy(registry, _file(tmp_path, SECOND, "b.yaml"), reason="a reviewer", actor=ADMIN)
    assert [(v.version, v.created_by, v.reason) for v in registry.policies.history()] == [
        (1, ADMIN, "provenance first"),
        (2, ADMIN, "a reviewer"),
    ]
    assert registry.policies.in_force() == v2 and registry.policies.in_force(between) == v1
    loaded = policy_in_force(registry)
    assert loaded is not None and (loaded.version, loaded.path) == (2, "policy v2")
    assert loaded.environment("staging").approvals is not None
    (event,) = registry.audit_events(action="policy.set", limit=1, newest_first=True)
    assert event.payload["previous_sha256"] == v1.sha256 and event.actor == ADMIN
    assert registry.verify_records()["policy_versions"] == 2


def test_a_policy_file_that_does_not_validate_is_never_set(
    registry: Registry, tmp_path: Path
) -> None:
    bad = _file(tmp_path, FIRST + "    approvers: 2\n")
    with pytest.raises(InputError, match="policy.yaml:5: field 'environments.staging.approvers'"):
        set_policy(registry, bad, reason="typo", actor=ADMIN)
    assert registry.policies.history() == []


def test_which_policy_judges(registry: Registry, tmp_path: Path) -> None:
    first, other = _file(tmp_path, FIRST), _file(tmp_path, SECOND, "other.yaml")
    with pytest.raises(PolicyNotInForce, match="no release policy in force; an admin sets"):
        resolve_policy(registry, None, deciding=False)
    with pytest.raises(PolicyNotInForce, match="no release policy in force"):
        resolve_policy(registry, first, deciding=True)
    dry = resolve_policy(registry, first, deciding=False)
    assert not dry.in_force  # a file is a dry run while nothing is in force
    set_policy(registry, first, reason="in force", actor=ADMIN)
    assert resolve_policy(registry, None, deciding=True).version == 1
    assert resolve_policy(registry, first, deciding=True).version == 1  # the same text
    with pytest.raises(PolicyNotInForce, match="other.yaml is not the registry's policy in"):
        resolve_policy(registry, other, deciding=True)
    assert not resolve_policy(registry, other, deciding=False).in_force
    # an object claiming to be a version is judged by its text, not by its claim
    forged = resolve_policy(registry, other, deciding=False)
    with pytest.raises(PolicyNotInForce):
        resolve_policy(registry, replace(forged, version=1), deciding=True)
    assert not resolve_policy(registry, replace(forged, version=1), deciding=False).in_force
