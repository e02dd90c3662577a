from __future__ import annotations

import pytest
from loraledger.trainer.pii import DETECTORS, detector, scan_text


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("write to jane.doe+bank@example.co.uk today", {"email": 1}),
        ("call (415) 555-2671 or +44 20 7946 0958", {"phone": 2}),
        ("SSN 123-45-6789", {"us_ssn": 1}),
        ("card 4111-1111-1111-1111 and 5500 0000 0000 0004", {"payment_card": 2}),
        ("IBAN GB82 WEST 1234 5698 7654 32 and DE89370400440532013000", {"iban": 2}),
    ],
)
def test_each_kind(text: str, found: dict[str, int]) -> None:
    assert scan_text(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3, 2024-01-01, 100 dollars, order 12345",
        "SSN 000-12-3456 is not valid (area 000)",
        "card 4111 1111 1111 1112 fails the Luhn check",
        "0000 0000 0000 0000 is a placeholder",
        "GB82 WEST 1234 5698 7654 33 has a bad check digit",
        "an email without domain: jane@localhost",
    ],
)
def test_lookalikes_are_not_pii(text: str) -> None:
    assert scan_text(text) == {}


def test_a_number_is_counted_once() -> None:
    assert scan_text("card 4111111111111111") == {"payment_card": 1}


def test_duplicate_registration_is_refused() -> None:
    assert "email" in DETECTORS
    with pytest.raises(ValueError, match="already registered"):
        detector("email")(lambda text: iter(()))
