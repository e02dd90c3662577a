"""Signed decisions as stored: read back only as their signed payload and audit event
say. (Who may decide and which decisions count -- the rules -- are tested in
tests/policies/test_approvals.py; the forgeries in tests/test_forgery.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loraledger.policies.approvals import decide
from loraledger.registry import AdapterVersion, Registry
from loraledger.registry.keys import verify_signature

from loraledger.errors import VerificationError
from tests.conftest import REVIEWER
from tests.policies.helpers import use_policy
from tests.registry.helpers import sql

POLICY = """\
version: 1
environments:
  staging:
    provenance: {signed: true}
    approvals: {count: 1, role: reviewer}
"""


@pytest.fixture
def policy(tmp_path: Path, registry: Registry) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return use_policy(registry, path)


def test_a_decision_reads_back_as_signed(
    registry: Registry, registered: AdapterVersion, policy: Path
) -> None:
    head = registry.audit_head()
    approval = decide(registry, registered.ref, "staging", "approve", comment="ok",
                      actor=REVIEWER, policy=policy)  # fmt: skip
    assert registry.approvals.list(registered.ref) == [approval]
    assert registry.approvals.list(registered.ref, "production") == []
    assert registry.approvals.list() == [approval]
    signed = json.loads(approval.payload)
    assert signed["audit_head"]["seq"] >= head[0] and signed["adapter"] == registered.ref
    reviewer = registry.identities.get(REVIEWER)
    assert verify_signature(reviewer.public_key_pem, approval.signature, approval.payload.encode())
    (event,) = registry.audit_events(action="approval.approve")
    assert event.payload["signature"] == approval.signature and event.actor == REVIEWER


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (
            "key_fingerprint",
            "0" * 64,
            "its key 0000000000000000… is not a key 'rita' was ever enrolled with",
        ),
        ("signature", "AAAA", "signature is .* but audit event"),
        ("environment", "production", "has no audit event|is missing"),
        ("comment", "fine", 'comment is "fine" but its signed payload says "ok"'),
    ],
)
def test_a_row_that_is_not_its_signed_record_is_refused(
    registry: Registry, registered: AdapterVersion, policy: Path, column: str, value: str,
    message: str,
) -> None:  # fmt: skip
    approval = decide(registry, registered.ref, "staging", "approve", comment="ok",
                      actor=REVIEWER, policy=policy)  # fmt: skip
    sql(registry, f"UPDATE approvals SET {column} = ? WHERE id = ?", [value, approval.id])
    with pytest.raises(VerificationError, match=message):
        registry.approvals.list(registered.ref, "staging")
