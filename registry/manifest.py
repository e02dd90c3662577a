"""The signed per-file manifest inside an OpenSSF model-signing bundle.

A model-signing bundle is a Sigstore bundle whose DSSE envelope carries an in-toto
statement: the subject digest is a sha256 over the sorted per-file digests and the
predicate's ``resources`` list each file's sha256. This module reads that statement; it
does not check the signature (that is :mod:`loraledger.registry.signing`'s job), so its
result is only trusted after verification.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from loraledger.errors import VerificationError

PREDICATE_TYPE = "https://model_signing/signature/v1.0"


@dataclass(frozen=True)
class Manifest:
    """Files and digests named by a signature bundle."""

    subject_name: str
    digest: str
    files: dict[str, str]  # relative path -> sha256 hex
    serialization: dict[str, Any]

    @classmethod
    def from_bundle(cls, bundle: bytes) -> Manifest:
        try:
            envelope = json.loads(bundle)["dsseEnvelope"]
            statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
            if statement["predicateType"] != PREDICATE_TYPE:
                raise ValueError(f"predicateType is {statement['predicateType']!r}")
            (subject,) = statement["subject"]
            files: dict[str, str] = {}
            for resource in statement["predicate"]["resources"]:
                if resource["algorithm"] != "sha256":
                    raise ValueError(f"unsupported algorithm {resource['algorithm']!r}")
                files[resource["name"]] = resource["digest"]
            return cls(
                subject_name=subject["name"],
                digest=subject["digest"]["sha256"],
                files=files,
                serialization=dict(statement["predicate"]["serialization"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise VerificationError(
                f"the signature bundle is not a model-signing v1.0 bundle ({error}); "
                "the stored signature is damaged or was replaced"
            ) from None


def describe_differences(expected: dict[str, str], actual: dict[str, str]) -> str:
    """``changed: a; missing: b; extra: c`` between two ``{path: sha256}`` maps, or ""."""
    parts = []
    for label, names in (
        ("changed", sorted(p for p in set(expected) & set(actual) if expected[p] != actual[p])),
        ("missing", sorted(set(expected) - set(actual))),
        ("extra", sorted(set(actual) - set(expected))),
    ):
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    return "; ".join(parts)
