from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loraledger.registry.merkle import merkle_root, prove_membership

from loraledger.errors import VerificationError

# RFC 6962 / Certificate Transparency reference leaves and roots (sha256).
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


@pytest.mark.parametrize("size", sorted(CT_ROOTS))
def test_rfc6962_reference_roots(size: int) -> None:
    assert merkle_root(CT_LEAVES[:size]) == CT_ROOTS[size]


def test_empty_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        merkle_root([])


_digests = st.lists(st.binary(min_size=32, max_size=32).map(bytes.hex), min_size=1, max_size=40)


@settings(max_examples=50, deadline=None)
@given(hashes=_digests, data=st.data())
def test_every_leaf_has_a_verifying_proof(hashes: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(1, len(hashes)))
    proof = prove_membership(hashes, index)
    assert proof.root == merkle_root(hashes)
    proof.verify()


@settings(max_examples=50, deadline=None)
@given(hashes=_digests, data=st.data())
def test_a_proof_for_another_record_fails(hashes: list[str], data: st.DataObject) -> None:
    proof = prove_membership(hashes, data.draw(st.integers(1, len(hashes))))
    forged = hashlib.sha256(b"not in the set").hexdigest()
    with pytest.raises(VerificationError, match="does not verify"):
        type(proof)(forged, proof.index, proof.size, proof.root, proof.proof).verify()


@settings(max_examples=50, deadline=None)
@given(hashes=_digests.filter(lambda h: len(h) > 1), data=st.data())
def test_any_change_or_reorder_changes_the_root(hashes: list[str], data: st.DataObject) -> None:
    root = merkle_root(hashes)
    changed = list(hashes)
    i = data.draw(st.integers(0, len(hashes) - 1))
    changed[i] = hashlib.sha256(bytes.fromhex(changed[i])).hexdigest()
    assert merkle_root(changed) != root
    if len(set(hashes)) > 1:
        swapped = list(reversed(hashes))
        if swapped != hashes:
            assert merkle_root(swapped) != root


@settings(max_examples=60)
@given(
    hashes=st.lists(st.binary(min_size=32, max_size=32).map(bytes.hex), min_size=1, max_size=300)
)
def test_the_fast_root_is_pymerkles_rfc9162_root(hashes: list[str]) -> None:
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    tree.append_entries([bytes.fromhex(h) for h in hashes])
    assert merkle_root(hashes) == bytes(tree.get_root()).hex()
    assert prove_membership(hashes, 1).root == merkle_root(hashes)
