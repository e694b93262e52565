"""A validator's application: results indexed, mempool updated on commit, replay after restart."""

from __future__ import annotations

from typing import Any

import pytest

from dchat_chain import ChainArgumentError, ChatChainApp
from dchat_chain.lowlevel import (
    InvalidEvidenceError,
    NotCertifiedError,
    SnapshotError,
    StateSnapshot,
    TxStatus,
    certified_height,
    certified_query,
    genesis_kind,
    load_snapshot,
    replay_store,
    verify_proof,
)
from dchat_core import canonical_encode


def _snapshot(chain: Any) -> bytes:
    items = chain.app.inner.state.committed_items()
    return StateSnapshot.take(chain.signed.state, items).to_bytes()


def _restart(chain: Any, validator_chain: Any, kind: str = "currency") -> Any:
    fresh = validator_chain(kind)
    state, last = replay_store(chain.store, fresh.app, batch=2)
    assert state == chain.signed.state
    assert last == chain.signed.certificates[chain.signed.height]
    assert fresh.app.inner.app_hash == chain.app.inner.app_hash
    return fresh.app


def test_genesis_kind_names_the_application(validator_chain: Any) -> None:
    assert genesis_kind(validator_chain.genesis_document("currency")) == "currency"
    assert genesis_kind(validator_chain.genesis_document("chat")) == "chat"
    for bad in (b"", b"\xff", canonical_encode([1]), canonical_encode({"kind": "gold"})):
        with pytest.raises(ChainArgumentError):
            genesis_kind(bad)


def test_commit_indexes_results_and_empties_the_mempool(validator_chain: Any) -> None:
    chain = validator_chain()
    first, second = chain.transfer(), chain.transfer(amount=10**9)  # more than it holds
    for tx in (first, second):
        chain.app.mempool.add(tx.raw)
    assert first.hash in chain.app.mempool
    chain.block([first.raw, second.raw])
    assert first.hash not in chain.app.mempool
    assert second.hash not in chain.app.mempool
    assert chain.app.index[first.hash] == TxStatus(1, 0, 0, "")
    failed = chain.app.index[second.hash]
    assert (failed.height, failed.index) == (1, 1)
    assert failed.code != 0


def test_replay_from_genesis_without_a_snapshot(validator_chain: Any) -> None:
    chain = validator_chain()
    digests = chain.grow(5)
    fresh = _restart(chain, validator_chain)
    assert all(d in fresh.index for d in digests)


def test_a_good_snapshot_is_loaded_and_only_the_blocks_above_run(validator_chain: Any) -> None:
    chain = validator_chain()
    digests = chain.grow(4)
    chain.store.save_snapshot(_snapshot(chain))
    digests += chain.grow(7)
    fresh = _restart(chain, validator_chain)
    assert [d in fresh.index for d in digests] == [False] * 4 + [True] * 3
    # The restored application goes on like the original, with the same mempool limits.
    chain.app = chain.signed.app = fresh
    chain.grow(8)
    for _ in range(20):
        fresh.mempool.add(chain.transfer(sender=1).raw)
    assert len(fresh.mempool) == 20


@pytest.mark.parametrize("damage", ["flip", "premature", "foreign"])
def test_an_unusable_snapshot_is_ignored_and_every_block_replayed(
    validator_chain: Any, damage: str
) -> None:
    chain = validator_chain()
    digests = chain.grow(3)
    good = _snapshot(chain)
    if damage == "flip":
        snapshot = bytearray(good)
        snapshot[len(snapshot) // 2] ^= 1
        chain.store.save_snapshot(bytes(snapshot))
    elif damage == "foreign":
        other = validator_chain("currency", "other")
        other.grow(3)
        chain.store.save_snapshot(_snapshot(other))
    if damage == "premature":
        chain.store.save_snapshot(good)  # no block 4 stored yet commits to it
        with pytest.raises(SnapshotError):
            StateSnapshot.from_bytes(good).verify(chain.store.block(3), None)
    else:
        digests += chain.grow(5)
    fresh = _restart(chain, validator_chain)
    assert all(d in fresh.index for d in digests)


def test_a_chat_chain_restores_from_its_snapshot(validator_chain: Any) -> None:
    chain = validator_chain("chat")
    for _ in range(4):
        chain.block()
    chain.store.save_snapshot(_snapshot(chain))
    chain.block()
    chain.block()
    probe = validator_chain("chat").app
    loaded = load_snapshot(chain.store, probe)
    assert loaded is not None
    assert loaded[0].height == 5  # the state after block 4, the next height to decide
    assert isinstance(probe.inner, ChatChainApp)
    fresh = _restart(chain, validator_chain, "chat")
    assert fresh.inner.height == 6


def test_restore_refuses_a_state_of_another_chain(validator_chain: Any) -> None:
    chain, other = validator_chain(), validator_chain("currency", "other")
    with pytest.raises(SnapshotError, match="another chain"):
        chain.app.restore(dict(other.app.inner.state.committed_items()))
    with pytest.raises(SnapshotError):
        chain.app.restore({})


def test_certified_queries_answer_from_the_state_a_stored_header_proves(
    validator_chain: Any,
) -> None:
    chain = validator_chain()
    PK = chain.PK
    with pytest.raises(NotCertifiedError):
        certified_query(chain.app, chain.store.height(), b"acct/" + PK[0])
    chain.grow(3)
    assert certified_height(chain.app, chain.store.height()) == 2
    answer = certified_query(chain.app, chain.store.height(), b"acct/" + PK[0])
    assert answer.height == 2
    assert answer.app_hash == chain.signed.headers[3].app_hash
    assert verify_proof(answer.app_hash, answer.key, answer.value, answer.proof)
    # The node stored fewer blocks than it executed: the answer follows the store.
    assert certified_height(chain.app, 1) == 0


def test_malformed_or_unknown_evidence_is_refused(validator_chain: Any) -> None:
    chain = validator_chain()
    with pytest.raises(InvalidEvidenceError, match="malformed"):
        chain.app._verify_evidence(b"\x00")
