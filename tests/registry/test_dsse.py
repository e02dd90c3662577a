"""DSSE envelopes (registry/dsse.py): a statement signed with an identity's key opens with
that key's public half only, and any change to payload, type or signer is refused."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from loraledger.registry.dsse import PAYLOAD_TYPE, envelope_sha256, open_envelope, sign_statement
from loraledger.registry.keys import KeyStore
from loraledger.registry.statements import new_statement

from loraledger.errors import VerificationError

STATEMENT = new_statement(
    [{"name": "adapter_model.safetensors", "digest": {"sha256": "ab" * 32}}],
    "https://loraledger.dev/test/v1",
    {"note": "a test predicate", "count": 3},
)


def test_a_signed_statement_opens_with_the_signers_key(keystore: KeyStore) -> None:
    key = keystore.create("eve")
    envelope = sign_statement(STATEMENT, key)
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert [s["keyid"] for s in envelope["signatures"]] == [key.fingerprint]
    assert open_envelope(envelope, {key.fingerprint: key.public_key_pem}) == STATEMENT
    assert envelope_sha256(envelope) == envelope_sha256(copy.deepcopy(envelope))


def test_other_keys_changed_payloads_and_types_are_refused(keystore: KeyStore) -> None:
    key, other = keystore.create("eve"), keystore.create("mallory")
    envelope = sign_statement(STATEMENT, key)
    with pytest.raises(VerificationError, match="not among the trusted public keys"):
        open_envelope(envelope, {other.fingerprint: other.public_key_pem})
    # the right key id, but another key's public half: the signature does not verify
    with pytest.raises(VerificationError, match="does not verify"):
        open_envelope(envelope, {key.fingerprint: other.public_key_pem})
    changed = dict(envelope)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["count"] = 4
    changed["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError, match="does not verify"):
        open_envelope(changed, {key.fingerprint: key.public_key_pem})
    with pytest.raises(VerificationError, match="payload type"):
        open_envelope(
            {**envelope, "payloadType": "text/plain"}, {key.fingerprint: key.public_key_pem}
        )
    with pytest.raises(VerificationError, match="not a DSSE envelope"):
        open_envelope({"payload": "%%%"}, {key.fingerprint: key.public_key_pem})
