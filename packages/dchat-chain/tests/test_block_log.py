"""The durable block store over a block log: order, conflicts, batches, named values, sync."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dchat_chain import ChainArgumentError
from dchat_chain.lowlevel import (
    CorruptStoreError,
    DurableBlockStore,
    MemoryBlockLog,
    SyncRequest,
    replay,
)


@pytest.fixture
def grown(validator_chain: Any) -> Any:
    chain = validator_chain()
    chain.grow(6)
    return chain


def test_blocks_round_trip_and_replay_rebuilds_the_state(grown: Any, validator_chain: Any) -> None:
    store = grown.store
    assert store.height() == 6
    assert store.block(3) == grown.signed.blocks[3]
    assert store.certificate(3) == grown.signed.certificates[3]
    assert store.block(7) is None
    assert store.certificate(0) is None
    fresh = validator_chain()
    state, last = replay(store, fresh.app, fresh.app.genesis_state())  # a consensus BlockStore
    assert state == grown.signed.state
    assert last == grown.signed.certificates[6]


def test_a_store_reopened_on_the_same_log_knows_its_height(grown: Any) -> None:
    log = MemoryBlockLog()
    first = DurableBlockStore(log)
    first.save_many(grown.store.range(1, 6))
    again = DurableBlockStore(log)
    assert again.height() == 6
    assert again.range(1, 10) == grown.store.range(1, 10)


def test_gaps_forks_and_foreign_certificates_are_refused(grown: Any) -> None:
    pairs = grown.store.range(1, 3)
    fresh = DurableBlockStore(MemoryBlockLog())
    (b1, c1), (b2, c2), _ = pairs
    with pytest.raises(ChainArgumentError, match="height order"):
        fresh.save(b2, c2)
    with pytest.raises(ChainArgumentError, match="not for this block"):
        fresh.save(b1, c2)
    fresh.save(b1, c1)
    fresh.save(b1, c1)  # the stored block again: a no-op
    fork = replace(b1, header=replace(b1.header, time_ms=b1.header.time_ms + 1))
    with pytest.raises(ChainArgumentError, match="different block"):
        fresh.save(fork, replace(c1, block_hash=fork.hash()))
    assert fresh.height() == 1


def test_a_batch_is_stored_whole_or_not_at_all(grown: Any) -> None:
    pairs = grown.store.range(1, 6)
    log = MemoryBlockLog()
    fresh = DurableBlockStore(log)
    with pytest.raises(ChainArgumentError, match="height order"):
        fresh.save_many([pairs[0], pairs[2]])
    assert (fresh.height(), log.height(), fresh.range(1, 10)) == (0, 0, [])
    fresh.save_many(pairs[:4])
    fresh.save_many(pairs[2:])  # overlapping: the stored ones are checked and skipped
    assert fresh.range(1, 10) == pairs


def test_a_log_refusing_a_duplicate_hash_is_a_typed_error(grown: Any) -> None:
    b1 = grown.store.block(1)
    log = MemoryBlockLog()
    assert log.append([(1, b1.hash(), b"x")])
    assert not log.append([(2, b1.hash(), b"y")])  # a stored hash at another height
    assert not log.append([(2, b"h2", b"y"), (2, b"h3", b"z")])  # one height twice
    assert log.height() == 1
    fresh = DurableBlockStore(log)
    log._rows[1] = (b1.hash(), b"\x82\x41")  # a stored record torn by a bad disk
    with pytest.raises(CorruptStoreError):
        fresh.block(1)
    with pytest.raises(CorruptStoreError):
        fresh.range(1, 2)


def test_range_stops_at_a_gap_in_the_log(grown: Any) -> None:
    log = MemoryBlockLog()
    pairs = grown.store.range(1, 4)
    store = DurableBlockStore(log)
    store.save_many(pairs[:2])
    log._rows.pop(2)
    log._rows[3] = (b"h", b"anything")
    assert store.range(1, 10) == pairs[:1]
    with pytest.raises(ChainArgumentError):
        log.records(1, 0)


def test_named_values_are_kept_apart() -> None:
    store = DurableBlockStore(MemoryBlockLog())
    assert (store.load_checkpoint(), store.load_snapshot()) == (None, None)
    store.save_checkpoint(b"cp-1")
    store.save_snapshot(b"snap")
    store.save_validator_set(b"d" * 32, b"set")
    store.save_checkpoint(b"cp-2")
    assert store.load_checkpoint() == b"cp-2"
    assert store.load_snapshot() == b"snap"
    assert store.load_validator_set(b"d" * 32) == b"set"
    assert store.load_validator_set(b"e" * 32) is None


def test_sync_answers_fit_the_byte_budget(grown: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = grown.store.serve_sync(SyncRequest(2, 10))
    assert [b.height for b in answer.blocks] == [2, 3, 4, 5, 6]
    assert answer.certificate == grown.signed.certificates[6]
    monkeypatch.setattr("dchat_chain._block_log.SYNC_BYTES", 1)
    small = grown.store.serve_sync(SyncRequest(2, 10))
    assert [b.height for b in small.blocks] == [2]  # always at least one block
    assert small.certificate == grown.signed.certificates[2]
    empty = grown.store.serve_sync(SyncRequest(9, 10))
    assert (empty.blocks, empty.certificate) == ((), None)
