"""The registry's core (registry/core.py): the one way a change is written and the check
of who may act, which every collection is built on."""

from __future__ import annotations

from pathlib import Path

import pytest
from loraledger.registry import Action, Registry, Role
from loraledger.registry.core import Core
from loraledger.registry.keys import KeyStore
from loraledger.registry.published import CheckpointFile

from loraledger.errors import (
    Conflict,
    InputError,
    LedgerWarning,
    NotFound,
    PermissionDenied,
    SigningKeyError,
    UsageError,
)
from tests.conftest import ADMIN, AUDITOR, ENGINEER


def test_every_collection_is_built_on_the_one_core(registry: Registry) -> None:
    assert isinstance(registry, Core)
    for name in ("identities", "datasets", "adapters", "evaluations", "approvals"):
        assert getattr(registry, name)._core is registry
    # siblings are the facade's own instances, passed in by name
    assert registry.adapters._attestations is registry.attestations
    assert registry.evaluations._adapters is registry.adapters
    assert registry.gate_checks._adapters is registry.adapters


def test_act_as_checks_identity_role_and_key_and_records_each_refusal(
    registry: Registry,
) -> None:
    with pytest.raises(UsageError, match="no acting identity"):
        registry.act_as(None, Action.ADAPTER_REGISTER)
    with pytest.raises(NotFound, match="unknown identity 'mallory'"):
        registry.act_as("mallory", Action.ADAPTER_REGISTER)
    with pytest.raises(PermissionDenied, match="has role auditor"):
        registry.act_as(AUDITOR, Action.ADAPTER_REGISTER)
    refused = registry.audit_events(action="access.refused")
    assert [(e.actor, e.payload["action"]) for e in refused[-2:]] == [
        ("mallory", "adapter.register"),
        (AUDITOR, "adapter.register"),
    ]
    assert registry.act_as(ENGINEER, Action.ADAPTER_REGISTER).name == ENGINEER


def test_a_key_that_is_not_the_registered_one_cannot_act(
    registry: Registry, tmp_path: Path
) -> None:
    other = Registry.open(registry.address, keys=KeyStore(tmp_path / "other-keys"))
    other.keys.create(ENGINEER, None)  # a new key file under the engineer's name
    with pytest.raises(SigningKeyError, match="is not enrolled for it; 'eve' signs with"):
        other.act_as(ENGINEER, Action.ADAPTER_REGISTER)


def test_a_change_must_record_an_event_and_bootstrap_only_an_empty_registry(
    registry: Registry,
) -> None:
    key = registry.act_as(ADMIN, Action.IDENTITY_CREATE)
    before = registry.audit_head()
    with (
        pytest.raises(RuntimeError, match="recorded no audit event"),
        registry.change(key, Action.IDENTITY_CREATE),
    ):
        pass
    assert registry.audit_head() == before  # nothing written
    with (
        pytest.raises(Conflict, match="already has identities"),
        registry.change(key, bootstrap=True) as change,
    ):
        change.record("identity.create", "identity:x", {})
    engineer = registry.act_as(ENGINEER)
    with (
        pytest.raises(PermissionDenied, match="this needs admin"),
        registry.change(engineer, Action.IDENTITY_CREATE) as change,
    ):
        change.record("identity.create", "identity:x", {})
    assert registry.identities.get(ADMIN).role is Role.ADMIN


def test_a_change_whose_mirror_write_fails_committed_and_says_so(
    registry: Registry, tmp_path: Path
) -> None:
    registry.audit.published = CheckpointFile(tmp_path / "gone" / "audit-checkpoints.jsonl")
    with pytest.warns(LedgerWarning, match=r"the change committed \(audit event #\d+\), but"):
        registry.identities.create("bob", Role.REVIEWER, actor=ADMIN)
    assert registry.identity("bob").role == Role.REVIEWER  # it is there, all of it


def test_an_impossible_actor_name_is_refused_before_anything_is_recorded(
    registry: Registry,
) -> None:
    before = registry.audit_head()
    for name in ("x" * 100_000, "eve\n", "eve\x1b[31m", "../alice"):
        with pytest.raises(InputError, match=r"acting identity \(--as\) .* is invalid"):
            registry.act_as(name, Action.ADAPTER_REGISTER)
    assert registry.audit_head() == before
