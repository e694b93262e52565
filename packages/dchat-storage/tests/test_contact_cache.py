"""The address book's read cache never shows a row that is not committed, nor a stale one."""

from __future__ import annotations

import threading

import pytest

from dchat_storage import Database
from dchat_storage._local import ContactRepo


class Boom(Exception):
    pass


def test_lookups_follow_add_replace_and_remove(db: Database) -> None:
    contacts = db.contacts
    assert contacts.get_by_name("bob") is None  # a miss is cached too...
    contacts.add("bob", "id-bob", b"card-1", 1.0)
    bob = contacts.get_by_name("bob")  # ...and an add forgets it
    assert bob is not None
    assert bob.card == b"card-1"
    assert contacts.get_by_identity("id-bob") == bob
    contacts.replace("id-bob", "id-bob-2", b"card-2")
    assert contacts.get_by_identity("id-bob") is None
    again = contacts.get_by_name("bob")
    assert again is not None
    assert (again.identity_id, again.card) == ("id-bob-2", b"card-2")
    assert contacts.remove("id-bob-2")
    assert contacts.get_by_name("bob") is None
    assert contacts.get_by_identity("id-bob-2") is None


def test_a_rolled_back_write_read_inside_its_transaction_is_not_kept(db: Database) -> None:
    db.contacts.add("bob", "id-bob", b"card-1", 1.0)
    assert db.contacts.get_by_name("bob") is not None
    seen = []

    def replace_then_fail() -> None:
        with db.transaction():
            db.contacts.replace("id-bob", "id-new", b"card-2")
            seen.append(db.contacts.get_by_name("bob"))  # the transaction sees its own write
            raise Boom

    with pytest.raises(Boom):
        replace_then_fail()
    assert [r.card for r in seen if r is not None] == [b"card-2"]
    after = db.contacts.get_by_name("bob")
    assert after is not None
    assert (after.identity_id, after.card) == ("id-bob", b"card-1")
    assert db.contacts.get_by_identity("id-new") is None


def test_a_read_that_overlapped_a_write_is_not_kept(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader fetched the old row, then a writer on another thread committed a new
    one before the reader could store what it read: the old row must not be kept."""
    db.contacts.add("bob", "id-bob", b"card-1", 1.0)
    original = ContactRepo._one
    raced = []

    def one_then_a_write(self: ContactRepo, query, ix):  # type: ignore[no-untyped-def]
        record = original(self, query, ix)
        if not raced:
            raced.append(True)
            writer = threading.Thread(
                target=lambda: db.contacts.replace("id-bob", "id-bob", b"card-2")
            )
            writer.start()
            writer.join()
        return record

    monkeypatch.setattr(ContactRepo, "_one", one_then_a_write)
    stale = db.contacts.get_by_name("bob")
    assert stale is not None
    assert stale.card == b"card-1"
    fresh = db.contacts.get_by_name("bob")
    assert fresh is not None
    assert fresh.card == b"card-2"


def test_the_cache_is_bounded(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ContactRepo, "CACHE_SIZE", 8)
    for n in range(20):
        assert db.contacts.get_by_name(f"nobody-{n}") is None
    assert len(db.contacts._cache) <= 8
