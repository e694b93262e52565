"""StateStore: layers, seal/commit/rollback and proofs against the committed root."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_chain import ChainStateError
from dchat_chain.lowlevel import MerkleTree, StateStore, verify_proof

ops = st.lists(
    st.tuples(
        st.sampled_from([b"a", b"b", b"c", b"d"]), st.one_of(st.none(), st.binary(max_size=4))
    ),
    max_size=20,
)


def test_writes_are_invisible_to_the_committed_state_until_commit() -> None:
    store = StateStore({b"a": b"1"})
    root = store.committed_root
    store.begin()
    store.set(b"a", b"2")
    store.delete(b"b")
    assert store.get(b"a") == b"2"
    assert store.committed_get(b"a") == b"1"
    sealed = store.seal()
    assert store.committed_root == root
    assert sealed != root
    value, proof = store.prove(b"a")
    assert value == b"1"
    assert verify_proof(root, b"a", b"1", proof.encode())
    assert store.commit() == {b"a": b"2"}
    assert store.committed_root == sealed == MerkleTree.from_items({b"a": b"2"}).root


def test_revert_drops_only_the_top_layer() -> None:
    store = StateStore()
    store.begin()
    store.set(b"a", b"1")
    store.begin()
    store.set(b"a", b"2")
    store.set(b"b", b"2")
    store.revert()
    assert store.get(b"a") == b"1"
    assert store.get(b"b") is None
    store.begin()
    store.delete(b"a")
    store.accept()
    assert store.get(b"a") is None


def test_rollback_forgets_a_sealed_block() -> None:
    store = StateStore({b"a": b"1"})
    root = store.committed_root
    store.begin()
    store.set(b"a", b"9")
    store.seal()
    store.rollback()
    assert store.committed_root == root
    assert store.get(b"a") == b"1"
    with pytest.raises(ChainStateError):
        store.commit()


def test_misuse_is_a_typed_error() -> None:
    store = StateStore()
    with pytest.raises(ChainStateError):
        store.set(b"a", b"1")
    with pytest.raises(ChainStateError):
        store.revert()
    store.begin()
    with pytest.raises(ChainStateError):
        store.accept()
    store.begin()
    with pytest.raises(ChainStateError):
        store.seal()


@given(ops, ops)
def test_layered_writes_match_a_plain_dict(first, second) -> None:
    model: dict[bytes, bytes] = {}
    store = StateStore()
    for batch in (first, second):
        store.begin()
        for key, value in batch:
            if value is None:
                store.delete(key)
                model.pop(key, None)
            else:
                store.set(key, value)
                model[key] = value
        store.seal()
        store.commit()
    assert store.committed_items() == model
    assert store.committed_root == MerkleTree.from_items(model).root
