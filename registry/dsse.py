"""DSSE envelopes (``application/vnd.in-toto+json``): signing a statement with an
identity's key and opening an envelope with the trusted public keys. Signing and
verification are ``securesystemslib``'s; the key id of a signature is the signer's key
fingerprint, so an envelope names the key that verifies it."""

from __future__ import annotations

import binascii
import copy
import hashlib
import json
from typing import Any

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import FormatError
from securesystemslib.exceptions import VerificationError as DsseVerificationError
from securesystemslib.signer import CryptoSigner, Key, SSlibKey

from loraledger.errors import VerificationError

from .audit import canonical_json
from .keys import SigningKey, load_public_key
from .statements import validate_statement

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _sslib_key(public_key_pem: str, key_fingerprint: str) -> SSlibKey:
    return SSlibKey.from_crypto(load_public_key(public_key_pem), keyid=key_fingerprint)


def sign_statement(statement: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """A DSSE envelope over the statement, signed with ``key`` (key id: its fingerprint)."""
    envelope = Envelope(
        payload=canonical_json(statement).encode("utf-8"),
        payload_type=PAYLOAD_TYPE,
        signatures={},
    )
    signer = CryptoSigner(key.private_key, _sslib_key(key.public_key_pem, key.fingerprint))
    envelope.sign(signer)
    return dict(envelope.to_dict())


def open_envelope(envelope: dict[str, Any], public_keys: dict[str, str]) -> dict[str, Any]:
    """The statement inside ``envelope``, after verifying its signature.

    ``public_keys`` maps key fingerprints to PEM public keys (the keys trusted); the
    envelope's key id picks one. Raises :class:`VerificationError` naming what failed.
    """
    try:
        # from_dict rewrites the signature dicts it is given: hand it a copy
        parsed = Envelope.from_dict(copy.deepcopy(envelope))
    except (KeyError, TypeError, ValueError, FormatError, binascii.Error) as error:
        raise VerificationError(f"not a DSSE envelope ({error})") from None
    if parsed.payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"payload type {parsed.payload_type!r} is not {PAYLOAD_TYPE}")
    keys: list[Key] = [
        _sslib_key(public_keys[keyid], keyid) for keyid in parsed.signatures if keyid in public_keys
    ]
    if not keys:
        raise VerificationError(
            "signed by a key that is not among the trusted public keys "
            f"({', '.join(k[:16] for k in parsed.signatures) or 'no signature'})"
        )
    try:
        parsed.verify(keys, 1)
    except DsseVerificationError as error:
        raise VerificationError(f"the DSSE signature does not verify ({error})") from None
    try:
        statement: dict[str, Any] = json.loads(parsed.payload)
    except ValueError:
        raise VerificationError("the signed payload is not JSON") from None
    validate_statement(statement)
    return statement


def envelope_sha256(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(envelope).encode("utf-8")).hexdigest()


__all__ = ["PAYLOAD_TYPE", "envelope_sha256", "open_envelope", "sign_statement"]
