"""One chain's block log (what a validator's block store writes through), on every backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dchat_storage import ChainBlockLog, Database, InvalidArgumentError


def test_rows_append_in_batches_and_read_back(db: Database) -> None:
    log = ChainBlockLog(db.chain, "cur")
    assert (log.height(), log.record(1), log.records(1, 10)) == (0, None, [])
    assert log.append([(1, b"h1", b"r1")])
    assert log.append([(2, b"h2", b"r2"), (3, b"h3", b"r3")])
    assert log.height() == 3
    assert log.record(2) == (b"h2", b"r2")
    assert log.records(2, 10) == [(2, b"r2"), (3, b"r3")]
    assert log.records(1, 2) == [(1, b"r1"), (2, b"r2")]
    assert log.records(4, 10) == []
    with pytest.raises(InvalidArgumentError):
        log.records(1, 0)


def test_a_stored_height_or_hash_refuses_the_whole_batch(db: Database) -> None:
    log = ChainBlockLog(db.chain, "cur")
    assert log.append([(1, b"h1", b"r1")])
    assert not log.append([(2, b"h2", b"r2"), (1, b"h1-fork", b"fork")])
    assert not log.append([(2, b"h1", b"same hash")])
    assert (log.height(), log.record(2)) == (1, None)
    assert log.append([(2, b"h2", b"r2")])


def test_chains_are_kept_apart(db: Database) -> None:
    cur, chat = ChainBlockLog(db.chain, "cur"), ChainBlockLog(db.chain, "chat")
    assert cur.append([(1, b"same", b"currency block")])
    assert chat.append([(1, b"same", b"chat block")])  # a hash is unique per chain
    cur.put(b"consensus/checkpoint", b"cp")
    assert (cur.record(1), chat.record(1)) == (
        (b"same", b"currency block"),
        (b"same", b"chat block"),
    )
    assert (cur.get(b"consensus/checkpoint"), chat.get(b"consensus/checkpoint")) == (b"cp", None)


def test_named_values_are_replaced_and_survive_a_reopen(
    db: Database, reopen: Callable[[], Database]
) -> None:
    log = ChainBlockLog(db.chain, "cur")
    log.append([(1, b"h1", b"r1")])
    log.put(b"snapshot/latest", b"old")
    log.put(b"snapshot/latest", b"new")
    log.put(b"valset/\x00", b"set")
    again = ChainBlockLog(reopen().chain, "cur")
    assert again.height() == 1
    assert again.get(b"snapshot/latest") == b"new"
    assert again.get(b"valset/\x00") == b"set"
    assert again.get(b"valset/\x01") is None
