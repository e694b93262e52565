"""``Database.events.recent``: the newest committed events from memory, equal to a page read.

A caught-up follower of the event log takes its events from here instead of
reading a page; it must get exactly what the page would give (same cursors,
same records, nothing missed or repeated), never a rolled-back or stale one,
and be sent to the database whenever memory cannot tell.
"""

from __future__ import annotations

import pytest

from dchat_storage import Database, LifecyclePolicy


class Boom(Exception):
    pass


def _add_then_fail(db: Database, n: int) -> None:
    with db.transaction():
        _add(db, n)
        raise Boom


def _add(db: Database, n: int, *, peer: str = "id-bob") -> bool:
    return db.messages.add(f"m{n}".encode(), "in", peer, f"text {n}", float(n), 10.0 + n)


def test_recent_gives_what_a_page_read_gives_with_the_appended_cursors(db: Database) -> None:
    assert db.events.recent(0) is None  # nothing committed by this process yet: read
    _add(db, 1)
    db.events.append("request", {"from": "id-carol", "n": 1}, 11.5)
    db.messages.add(b"m2", "out", "id-bob", "text 2", 2.0, 12.0, conversation_id="group-1")
    start = db.events.page(0)[0].cursor - 1
    for after in range(start, start + 4):
        assert db.events.recent(after) == db.events.page(after)
    assert [e.cursor for e in db.events.recent(start) or []] == [start + 1, start + 2, start + 3]
    assert db.events.recent(start, limit=1) == db.events.page(start, limit=1)
    assert db.events.recent(start - 1) is None  # memory does not reach back that far


def test_a_grouped_call_that_failed_leaves_no_event_in_memory(db: Database) -> None:
    _add(db, 1)
    head = db.events.head()
    with db.transaction():
        _add(db, 2)
        with pytest.raises(Boom):
            _add_then_fail(db, 3)  # a grouped call's savepoint rolls back
        _add(db, 4)
    assert db.events.recent(head) == db.events.page(head)
    assert [e.message.body for e in db.events.recent(head) or [] if e.message] == [
        "text 2",
        "text 4",
    ]
    with pytest.raises(Boom):
        _add_then_fail(db, 5)  # a transaction that rolls back whole
    assert db.events.recent(db.events.head()) == []


def test_a_write_that_changes_messages_empties_memory(db: Database) -> None:
    _add(db, 1)
    _add(db, 2)
    head = db.events.head()
    assert db.events.recent(head - 2) is not None
    db.messages.mark_read(b"m1", 20.0)  # the stored record's read_at moved
    assert db.events.recent(head - 2) is None
    _add(db, 3)  # memory starts again from the next commit
    assert db.events.recent(head) == db.events.page(head)
    db.messages.delete(b"m3")  # its event goes with it (ON DELETE CASCADE)
    assert db.events.recent(head) is None
    assert db.events.page(head) == []


def test_pruning_empties_memory(db: Database) -> None:
    _add(db, 1)
    db.events.append("request", {"n": 1}, 20.0)
    head = db.events.head()
    assert db.events.recent(head - 1) is not None
    db.lifecycle.sweep(100.0, LifecyclePolicy(event_ttl=10.0))
    assert db.events.recent(head - 1) is None


def test_contact_names_stay_in_memory_until_a_write(db: Database) -> None:
    assert db.contacts.names_in_memory() is None
    db.contacts.add("bob", "id-bob", b"card", 1.0)
    assert db.contacts.names() == {"id-bob": "bob"}
    assert db.contacts.names_in_memory() == {"id-bob": "bob"}
    db.contacts.replace("id-bob", "id-bob-2", b"card-2")
    assert db.contacts.names_in_memory() is None
    assert db.contacts.names() == {"id-bob-2": "bob"}
