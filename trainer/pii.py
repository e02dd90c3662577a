"""Finding personal data in training records, without keeping it.

Each detector finds candidates with a pattern and confirms them with a well-kept
validator: phone numbers with Google's libphonenumber (``phonenumbers``), US social
security numbers, payment card numbers (Luhn) and IBANs (ISO 7064 check digits) with
``python-stdnum``. Only the kind, the count and the line numbers are recorded -- never a
value. Detectors are registered, so a new kind is one function and one decorator.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

Span = tuple[int, int]
Detector = Callable[[str], Iterator[Span]]

DETECTORS: dict[str, Detector] = {}


def detector(kind: str) -> Callable[[Detector], Detector]:
    """Register a detector for ``kind``; detectors run in registration order and a span
    claimed by an earlier one is not counted again (a card number is not also a phone)."""

    def register(function: Detector) -> Detector:
        if kind in DETECTORS:
            raise ValueError(f"a PII detector for {kind!r} is already registered")
        DETECTORS[kind] = function
        return function

    return register


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")


@detector("email")
def _emails(text: str) -> Iterator[Span]:
    for match in _EMAIL.finditer(text):
        yield match.span()


@detector("iban")
def _ibans(text: str) -> Iterator[Span]:
    from stdnum import iban

    for match in _IBAN.finditer(text):
        if iban.is_valid(match.group()):
            yield match.span()


@detector("payment_card")
def _cards(text: str) -> Iterator[Span]:
    from stdnum import luhn

    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits) and len(set(digits)) > 1:
            yield match.span()


@detector("us_ssn")
def _ssns(text: str) -> Iterator[Span]:
    from stdnum.us import ssn

    for match in _SSN.finditer(text):
        if ssn.is_valid(match.group()):
            yield match.span()


@detector("phone")
def _phones(text: str) -> Iterator[Span]:
    import phonenumbers

    for match in phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.VALID):
        yield match.start, match.end


def scan_text(text: str) -> dict[str, int]:
    """Count findings per kind in ``text``."""
    claimed: list[Span] = []
    counts: dict[str, int] = {}
    for kind, find in DETECTORS.items():
        for start, end in find(text):
            if any(start < c_end and c_start < end for c_start, c_end in claimed):
                continue
            claimed.append((start, end))
            counts[kind] = counts.get(kind, 0) + 1
    return counts
