"""Comparing a signed manifest with the files there are (registry/manifest.py): every
changed, missing and extra file named, and nothing when they agree."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from loraledger.registry.manifest import describe_differences

DIGESTS = st.dictionaries(st.text("abc/.", min_size=1, max_size=6), st.sampled_from("0123"))


def test_each_kind_of_difference_is_named() -> None:
    signed = {"a.json": "1", "b.bin": "2", "c.txt": "3"}
    found = {"a.json": "1", "b.bin": "9", "d.txt": "4"}
    assert describe_differences(signed, found) == "changed: b.bin; missing: c.txt; extra: d.txt"


@given(DIGESTS, DIGESTS)
def test_empty_exactly_when_the_maps_agree(
    expected: dict[str, str], actual: dict[str, str]
) -> None:
    assert (describe_differences(expected, actual) == "") == (expected == actual)
