"""Conversations, read receipts, disappearing messages and retention."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from dchat_storage import Database, InvalidArgumentError, LifecyclePolicy, NotFoundError
from dchat_storage.lowlevel import SENT_HOLD, ConversationRecord

DAY = 86400.0


def _ids(db: Database) -> list[bytes]:
    return [m.message_id for m in db.messages.list(limit=1000)]


def test_conversation_round_trip_and_updates(db: Database) -> None:
    assert db.conversations.create("id-bob", 5.0, title="Bob", retention=7 * DAY) is True
    assert db.conversations.create("id-bob", 6.0, title="ignored") is False
    db.conversations.set_disappearing("id-bob", 60.0)
    assert db.conversations.get("id-bob") == ConversationRecord("id-bob", "Bob", 7 * DAY, 60.0, 5.0)
    db.conversations.set_retention("id-bob", None)
    record = db.conversations.get("id-bob")
    assert record is not None
    assert record.retention is None
    assert db.conversations.get("id-carol") is None
    assert [c.conversation_id for c in db.conversations.list()] == ["id-bob"]


def test_conversation_argument_errors(db: Database) -> None:
    with pytest.raises(InvalidArgumentError):
        db.conversations.create("c", 0.0, retention=0)
    with pytest.raises(NotFoundError):
        db.conversations.set_retention("missing", 5.0)
    with pytest.raises(InvalidArgumentError):
        db.conversations.set_disappearing("missing", -1.0)


def test_messages_can_be_filed_under_a_group_conversation(db: Database) -> None:
    db.messages.add(b"g1", "in", "id-bob", "to the group", 1.0, 1.0, conversation_id="grp")
    db.messages.add(b"d1", "in", "id-bob", "direct", 2.0, 2.0)
    assert [m.message_id for m in db.messages.list(conversation_id="grp")] == [b"g1"]
    assert [m.message_id for m in db.messages.list(conversation_id="id-bob")] == [b"d1"]
    assert [m.message_id for m in db.messages.list("id-bob")] == [b"g1", b"d1"]
    group = db.messages.get(b"g1")
    assert group is not None
    assert group.conversation_id == "grp"


def test_disappearing_timer_starts_when_read(db: Database) -> None:
    db.conversations.create("id-bob", 0.0, disappear_after=60.0)
    db.messages.add(b"m1", "in", "id-bob", "secret", 0.0, 10.0)
    db.messages.add(b"m2", "in", "id-bob", "unread", 0.0, 11.0)
    assert db.lifecycle.sweep(10_000.0).disappeared == 0  # unread: no timer yet
    assert db.messages.mark_read(b"m1", 100.0) is True
    assert db.messages.mark_read(b"m1", 500.0) is False  # the first read counts
    record = db.messages.get(b"m1")
    assert record is not None
    assert (record.read_at, record.expires_at) == (100.0, 160.0)
    assert db.lifecycle.sweep(159.0).disappeared == 0
    assert db.lifecycle.sweep(160.0).disappeared == 1
    assert _ids(db) == [b"m2"]


def test_sent_messages_count_from_the_peers_read_receipt(db: Database) -> None:
    db.conversations.create("id-bob", 0.0, disappear_after=30.0)
    db.messages.add(b"out", "out", "id-bob", "bye", 5.0, 5.0)
    db.messages.add(b"unread", "out", "id-bob", "never read", 5.0, 5.0)
    db.messages.add(b"other", "out", "id-carol", "stays", 5.0, 5.0)
    assert db.lifecycle.sweep(35.0).disappeared == 0  # not read yet: held for a day
    assert db.messages.start_timer(b"out", 100.0) is True  # the peer read it
    assert db.messages.start_timer(b"out", 200.0) is False  # an earlier deadline stands
    assert db.messages.start_timer(b"other", 100.0) is False  # no timer
    assert db.messages.start_timer(b"gone", 100.0) is False
    assert db.lifecycle.sweep(129.0).disappeared == 0
    assert db.lifecycle.sweep(130.0).disappeared == 1
    assert db.lifecycle.sweep(5.0 + SENT_HOLD).disappeared == 1  # no receipt ever came
    assert _ids(db) == [b"other"]


def test_mark_read_of_unknown_message(db: Database) -> None:
    with pytest.raises(NotFoundError):
        db.messages.mark_read(b"nope", 1.0)


def test_retention_deletes_only_old_messages_of_limited_conversations(db: Database) -> None:
    db.conversations.create("id-bob", 0.0, retention=DAY)
    db.conversations.create("id-carol", 0.0)  # forever
    db.messages.add(b"old-bob", "in", "id-bob", "x", 0.0, 0.0)
    db.messages.add(b"new-bob", "in", "id-bob", "x", 0.0, DAY + 10)
    db.messages.add(b"old-carol", "in", "id-carol", "x", 0.0, 0.0)
    db.messages.add(b"old-dave", "in", "id-dave", "x", 0.0, 0.0)  # no settings: forever
    report = db.lifecycle.sweep(DAY + 20, LifecyclePolicy(mailbox_ttl=None))
    assert report.retention == 1
    assert sorted(_ids(db)) == [b"new-bob", b"old-carol", b"old-dave"]


def test_sweep_is_idempotent(db: Database) -> None:
    db.conversations.create("id-bob", 0.0, retention=10.0, disappear_after=5.0)
    for n in range(5):
        db.messages.add(bytes([n]), "in", "id-bob", "x", 0.0, float(n))
    db.messages.mark_read(bytes([4]), 4.0)
    db.mailboxes.put(b"box", b"old envelope", 0.0)
    db.mailboxes.put(b"box", b"new envelope", 100.0)
    policy = LifecyclePolicy(mailbox_ttl=50.0)
    first = db.lifecycle.sweep(100.0, policy)
    state = (_ids(db), db.mailboxes.count())
    second = db.lifecycle.sweep(100.0, policy)
    assert first.total > 0
    assert (first.disappeared, first.retention, first.mailbox_entries) == (1, 4, 1)
    assert second.total == 0
    assert (_ids(db), db.mailboxes.count()) == state == ([], 1)


def test_expired_lists_what_ran_out_soonest_first(db: Database) -> None:
    db.conversations.set_timer("id-bob", 30.0, 0.0)  # creates the conversation's settings
    assert db.conversations.get("id-bob") == ConversationRecord("id-bob", "", None, 30.0, 0.0)
    db.messages.add(b"late", "in", "id-bob", "x", 9.0, 9.0)
    db.messages.add(b"soon", "in", "id-bob", "x", 5.0, 5.0)
    db.messages.add(b"in", "in", "id-bob", "unread: no timer yet", 1.0, 1.0)
    db.messages.add(b"free", "in", "id-carol", "no timer", 1.0, 1.0)
    db.messages.mark_read(b"late", 9.0)
    db.messages.mark_read(b"soon", 5.0)
    db.messages.mark_read(b"free", 5.0)
    assert [m.message_id for m in db.messages.expired(35.0)] == [b"soon"]
    assert [m.message_id for m in db.messages.expired(1e9)] == [b"soon", b"late"]
    assert [m.message_id for m in db.messages.expired(1e9, limit=1)] == [b"soon"]
    db.conversations.set_timer("id-bob", None, 50.0)  # off: running timers keep running
    db.messages.add(b"after", "in", "id-bob", "x", 60.0, 60.0)
    db.messages.mark_read(b"after", 60.0)
    assert [m.message_id for m in db.messages.expired(1e9)] == [b"soon", b"late"]
    with pytest.raises(InvalidArgumentError):
        db.conversations.set_timer("id-bob", 0.0, 1.0)


def test_a_policy_without_disappearing_leaves_expired_messages_alone(db: Database) -> None:
    db.conversations.set_timer("id-bob", 5.0, 0.0)
    db.messages.add(b"m", "in", "id-bob", "x", 0.0, 0.0)
    db.messages.mark_read(b"m", 0.0)
    assert db.lifecycle.sweep(10.0, LifecyclePolicy(disappearing=False)).disappeared == 0
    assert _ids(db) == [b"m"]  # left to the messaging layer, which takes its notes too
    assert db.lifecycle.sweep(10.0).disappeared == 1


def test_truncating_the_log_keeps_every_row(db: Database) -> None:
    db.messages.add(b"m", "in", "id-bob", "x", 0.0, 0.0)
    assert db.truncate_log() is True  # no reader: the log is empty
    assert db.truncate_log() is True
    assert _ids(db) == [b"m"]


def test_a_reader_on_an_older_snapshot_delays_the_truncation(db: Database) -> None:
    if db.path is None:
        pytest.skip("PostgreSQL keeps no write-ahead log beside the database")
    db.messages.add(b"m", "in", "id-bob", "x", 0.0, 0.0)
    with contextlib.closing(sqlite3.connect(db.path)) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchall()  # holds this snapshot
        db.messages.delete(b"m")
        assert db.truncate_log() is False  # the reader still needs the log
        reader.execute("COMMIT")
    assert db.truncate_log() is True
    assert Path(f"{db.path}-wal").stat().st_size == 0
