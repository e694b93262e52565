"""The sparse Merkle tree: roots, inclusion and non-inclusion proofs, tampering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain._merkle import EMPTY_ROOT
from dchat_chain.lowlevel import MerkleProof, MerkleTree, verify_proof
from dchat_core import canonical_encode
from dchat_testing import hostile_bytes

keys = st.binary(min_size=0, max_size=12)
values = st.binary(min_size=0, max_size=16)
maps = st.dictionaries(keys, values, max_size=40)


def test_empty_tree_has_the_zero_root_and_proves_absence() -> None:
    tree = MerkleTree()
    assert tree.root == EMPTY_ROOT
    value, proof = tree.prove(b"k")
    assert value is None
    assert verify_proof(tree.root, b"k", None, proof.encode())
    assert not verify_proof(tree.root, b"k", b"v", proof.encode())


def test_single_entry_root_is_its_leaf_digest() -> None:
    tree = MerkleTree.from_items({b"k": b"v"})
    path = hashlib.sha256(b"k").digest()
    leaf = hashlib.sha256(b"\x00" + path + hashlib.sha256(b"v").digest()).digest()
    assert tree.root == leaf


def test_known_two_entry_root() -> None:
    # Known answer computed by hand from the documented rules.
    a, b = b"a", b"b"
    pa, pb = hashlib.sha256(a).digest(), hashlib.sha256(b).digest()
    leaf_a = hashlib.sha256(b"\x00" + pa + hashlib.sha256(b"1").digest()).digest()
    leaf_b = hashlib.sha256(b"\x00" + pb + hashlib.sha256(b"2").digest()).digest()
    node = leaf_a + leaf_b if pa[0] >> 7 == 0 else leaf_b + leaf_a
    # sha256("a") starts 0xca (bit 1), sha256("b") 0x3e (bit 0): they split at the root.
    assert pa[0] >> 7 != pb[0] >> 7
    assert MerkleTree.from_items({a: b"1", b: b"2"}).root == hashlib.sha256(b"\x01" + node).digest()


@given(maps, st.randoms(use_true_random=False))
def test_root_is_independent_of_insertion_order(items: dict[bytes, bytes], rnd) -> None:
    order = list(items.items())
    rnd.shuffle(order)
    tree = MerkleTree()
    for key, value in order:
        tree = tree.update({key: value})
    assert tree.root == MerkleTree.from_items(items).root
    assert len(tree) == len(items)
    assert dict(tree.items()) == items


@given(maps, keys)
def test_delete_restores_the_root_without_the_key(items: dict[bytes, bytes], key: bytes) -> None:
    without = {k: v for k, v in items.items() if k != key}
    tree = MerkleTree.from_items({**items, key: b"x"}).update({key: None})
    assert tree.root == MerkleTree.from_items(without).root
    assert tree.get(key) is None
    assert len(tree) == len(without)


@given(maps, keys)
def test_proofs_verify_for_present_and_absent_keys(items: dict[bytes, bytes], probe: bytes) -> None:
    tree = MerkleTree.from_items(items)
    for key, expected in [*items.items(), (probe, items.get(probe))]:
        value, proof = tree.prove(key)
        assert value == expected
        assert verify_proof(tree.root, key, value, proof.encode())


@given(maps.filter(bool), st.data())
def test_proofs_fail_for_tampered_value_root_or_proof(items: dict[bytes, bytes], data) -> None:
    tree = MerkleTree.from_items(items)
    key = data.draw(st.sampled_from(sorted(items)))
    value, proof = tree.prove(key)
    raw = proof.encode()
    assert value is not None
    assert not verify_proof(tree.root, key, value + b"x", raw)
    assert not verify_proof(tree.root, key, None, raw)
    assert not verify_proof(bytes(32) if tree.root != bytes(32) else b"\x01" * 32, key, value, raw)
    if proof.siblings:
        i = data.draw(st.integers(0, len(proof.siblings) - 1))
        bad = list(proof.siblings)
        bad[i] = bytes(b ^ 0xFF for b in bad[i])
        assert not verify_proof(tree.root, key, value, MerkleProof(tuple(bad)).encode())
        assert not verify_proof(tree.root, key, value, MerkleProof(tuple(bad[:-1])).encode())


@given(maps, keys, st.binary(min_size=32, max_size=32))
def test_absence_proof_cannot_claim_a_present_key_absent(items, key, junk) -> None:
    tree = MerkleTree.from_items({**items, key: b"present"})
    _, absent_proof = MerkleTree.from_items({k: v for k, v in items.items() if k != key}).prove(key)
    assert not verify_proof(tree.root, key, None, absent_proof.encode())
    forged = MerkleProof(tree.prove(key)[1].siblings, (junk, junk))
    assert not verify_proof(tree.root, key, None, forged.encode())


def test_non_inclusion_via_another_leaf_is_checked_for_its_prefix() -> None:
    tree = MerkleTree.from_items({b"only": b"1"})
    value, proof = tree.prove(b"other")
    assert value is None
    assert proof.other_leaf is not None
    assert verify_proof(tree.root, b"other", None, proof.encode())
    # The same leaf cannot serve as "another leaf" for its own key.
    assert not verify_proof(tree.root, b"only", None, proof.encode())


@given(hostile_bytes(max_size=300))
@settings(max_examples=300)
def test_verify_proof_is_total_on_garbage(garbage: bytes) -> None:
    assert verify_proof(EMPTY_ROOT, b"k", None, garbage) in (True, False)


@pytest.mark.parametrize(
    "proof",
    [
        {"v": 2, "sib": [], "leaf": None},
        {"v": 1, "sib": [b"short"], "leaf": None},
        {"v": 1, "sib": [], "leaf": [b"x" * 32]},
        {"v": 1, "sib": [bytes(32)] * 257, "leaf": None},
        {"v": 1, "sib": []},
    ],
)
def test_malformed_proofs_are_rejected(proof: dict) -> None:
    assert not verify_proof(EMPTY_ROOT, b"k", None, canonical_encode(proof))


def test_old_trees_stay_valid_after_updates() -> None:
    old = MerkleTree.from_items({b"a": b"1"})
    root = old.root
    new = old.update({b"a": b"2", b"b": b"3"})
    assert old.root == root
    assert old.get(b"a") == b"1"
    assert new.get(b"a") == b"2"
    _value, proof = old.prove(b"a")
    assert verify_proof(root, b"a", b"1", proof.encode())
    assert not verify_proof(new.root, b"a", b"1", proof.encode())
