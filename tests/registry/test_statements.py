"""In-toto statements (registry/statements.py): what is not a valid Statement v1 with a
known predicate is refused by the official protobufs' rules, naming what is wrong."""

from __future__ import annotations

import pytest
from loraledger.registry.statements import SLSA_PROVENANCE, TEST_RESULT, validate_statement

from loraledger.errors import VerificationError


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"_type": "x", "subject": [], "predicateType": "p", "predicate": {"a": 1}}, "type"),
        (
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "a", "digest": {"sha256": "00"}}],
                "predicateType": TEST_RESULT,
                "predicate": {"result": "PASSED", "score": 1},
            },
            "score",
        ),
        (
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "a", "digest": {"sha256": "00"}}],
                "predicateType": SLSA_PROVENANCE,
                "predicate": {"buildDefinition": {"buildType": "t"}, "runDetails": {}},
            },
            "SLSA v1 needs",
        ),
    ],
)
def test_invalid_statements_are_refused(statement: dict[str, object], problem: str) -> None:
    with pytest.raises(VerificationError, match=problem):
        validate_statement(statement)  # type: ignore[arg-type]
