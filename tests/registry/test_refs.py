from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loraledger.registry.refs import Ref, validate_name

from loraledger.errors import InputError

BAD_NAMES = [
    "",
    "a/b",
    "a\\b",
    "../x",
    "x;DROP TABLE adapters",
    "a'b",
    'a"b',
    "a b",
    "a\nb",
    "a\x00b",
    "a\x1bb",
    "-lead",
    ".hidden",
    "x" * 65,
    "é",
    "a..b",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InputError, match="use 1-64 letters, digits"):
        validate_name(name, what="adapter name")


@pytest.mark.parametrize("name", ["bank-support", "A.b_c-1", "x" * 64, "7"])
def test_good_names_pass(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("bank", Ref("bank")),
        ("bank@v3", Ref("bank", 3)),
        ("bank@latest", Ref("bank")),
    ],
)
def test_refs_parse(text: str, ref: Ref) -> None:
    assert Ref.parse(text) == ref


@pytest.mark.parametrize("text", ["bank@v0", "bank@3", "bank@vx", "bank@", "@v1", "a/b@v1"])
def test_bad_refs_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        Ref.parse(text)


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}", fullmatch=True), st.integers(1, 10**6))
def test_ref_text_round_trips(name: str, version: int) -> None:
    ref = Ref(name, version)
    assert Ref.parse(str(ref)) == ref
