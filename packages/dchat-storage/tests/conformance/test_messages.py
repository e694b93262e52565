"""MessageRepo and OutboxRepo."""

from __future__ import annotations

import pytest

from dchat_storage import (
    Database,
    DuplicateError,
    InvalidArgumentError,
    MessageRecord,
    NotFoundError,
    OutboxItem,
)


def _add(db: Database, n: int, peer: str = "id-bob", stored_at: float | None = None) -> bool:
    at = float(n) if stored_at is None else stored_at
    return db.messages.add(n.to_bytes(16, "big"), "in", peer, f"body {n}", at - 0.5, at)


def test_message_round_trip(db: Database) -> None:
    assert db.messages.add(b"m1", "out", "id-bob", "héllo ✓", 10.0, 11.0) is True
    assert db.messages.get(b"m1") == MessageRecord(b"m1", "out", "id-bob", "héllo ✓", 10.0, 11.0)
    assert db.messages.get(b"m2") is None


def test_direction_matches_id_and_peer_by_index(db: Database) -> None:
    db.messages.add(b"m1", "out", "id-bob", "to bob", 1.0, 2.0)
    db.messages.add(b"m2", "in", "id-bob", "from bob", 1.0, 2.0)
    assert db.messages.direction(b"m1", "id-bob") == "out"
    assert db.messages.direction(b"m2", "id-bob") == "in"
    assert db.messages.direction(b"m1", "id-carol") is None  # not of that conversation
    assert db.messages.direction(b"m3", "id-bob") is None
    with db.transaction():  # sees the open transaction's rows
        db.messages.add(b"m3", "in", "id-bob", "new", 3.0, 3.0)
        assert db.messages.direction(b"m3", "id-bob") == "in"


def test_redelivered_message_is_stored_once(db: Database) -> None:
    assert db.messages.add(b"m1", "in", "id-bob", "first", 1.0, 2.0) is True
    assert db.messages.add(b"m1", "in", "id-eve", "forged", 3.0, 4.0) is False
    assert db.messages.list() == [MessageRecord(b"m1", "in", "id-bob", "first", 1.0, 2.0)]


def test_list_returns_the_latest_rows_oldest_first(db: Database) -> None:
    for n in (3, 1, 5, 2, 4):
        _add(db, n)
    assert [m.stored_at for m in db.messages.list(limit=3)] == [3.0, 4.0, 5.0]
    assert [m.stored_at for m in db.messages.list()] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_list_breaks_timestamp_ties_by_storage_order(db: Database) -> None:
    for n in range(4):
        _add(db, n, stored_at=7.0)
    ids = [int.from_bytes(m.message_id, "big") for m in db.messages.list(limit=3)]
    assert ids == [1, 2, 3]


def test_list_filters_by_peer(db: Database) -> None:
    _add(db, 1, peer="id-bob")
    _add(db, 2, peer="id-carol")
    _add(db, 3, peer="id-bob")
    assert [m.stored_at for m in db.messages.list("id-bob")] == [1.0, 3.0]
    assert db.messages.list("id-dave") == []


def test_message_rejects_bad_direction_and_limit(db: Database) -> None:
    with pytest.raises(InvalidArgumentError):
        db.messages.add(b"m", "sideways", "id-bob", "", 0.0, 0.0)
    with pytest.raises(ValueError, match="limit"):
        db.messages.list(limit=0)
    assert db.messages.get(b"m") is None


def test_message_repr_hides_the_body(db: Database) -> None:
    db.messages.add(b"m", "in", "id-bob", "the plaintext", 0.0, 0.0)
    assert "the plaintext" not in repr(db.messages.get(b"m"))


def test_outbox_round_trip_and_due(db: Database) -> None:
    db.outbox.enqueue(b"m1", "relay.example:7000", b"box", b"env", now=100.0)
    assert db.outbox.count() == 1
    assert db.outbox.due(99.0) == []
    assert db.outbox.due(100.0) == [
        OutboxItem(b"m1", "relay.example:7000", b"box", b"env", 0, 100.0, 100.0)
    ]


def test_outbox_backoff_moves_item_behind_others(db: Database) -> None:
    for n, mid in enumerate((b"a", b"b", b"c")):
        db.outbox.enqueue(mid, "relay", b"box", b"env" + mid, now=float(n))
    db.outbox.mark_failed(b"a", next_attempt_at=10.0)
    db.outbox.mark_failed(b"a", next_attempt_at=20.0)
    assert [i.message_id for i in db.outbox.due(5.0)] == [b"b", b"c"]
    due = db.outbox.due(20.0)
    assert [i.message_id for i in due] == [b"b", b"c", b"a"]
    assert (due[-1].attempts, due[-1].next_attempt_at) == (2, 20.0)
    assert [i.message_id for i in db.outbox.due(20.0, limit=2)] == [b"b", b"c"]


def test_mark_sent_removes_only_that_item(db: Database) -> None:
    db.outbox.enqueue(b"a", "relay", b"box", b"1", now=0.0)
    db.outbox.enqueue(b"b", "relay", b"box", b"2", now=0.0)
    db.outbox.mark_sent(b"a")
    assert [i.message_id for i in db.outbox.due(1.0)] == [b"b"]
    assert db.outbox.count() == 1


def test_outbox_errors(db: Database) -> None:
    db.outbox.enqueue(b"a", "relay", b"box", b"1", now=0.0)
    with pytest.raises(DuplicateError):
        db.outbox.enqueue(b"a", "relay2", b"box2", b"2", now=1.0)
    with pytest.raises(NotFoundError):
        db.outbox.mark_sent(b"missing")
    with pytest.raises(LookupError):
        db.outbox.mark_failed(b"missing", 5.0)
    with pytest.raises(InvalidArgumentError):
        db.outbox.due(0.0, limit=-1)
    assert db.outbox.due(0.0) == [OutboxItem(b"a", "relay", b"box", b"1", 0, 0.0)]
