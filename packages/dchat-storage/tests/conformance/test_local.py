"""IdentityRepo and ContactRepo."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dchat_storage import (
    ContactRecord,
    Database,
    DuplicateError,
    IdentityRecord,
)


def test_identity_is_absent_until_saved(db: Database) -> None:
    assert db.identity.get() is None


def test_identity_round_trips_across_reopen(db: Database, reopen: Callable[[], Database]) -> None:
    db.identity.save("id-alice", b"\x00wrapped-keys", b"card", 1700000000.5)
    db.close()
    assert reopen().identity.get() == IdentityRecord(
        "id-alice", b"\x00wrapped-keys", b"card", 1700000000.5
    )


def test_second_identity_is_refused_and_first_kept(db: Database) -> None:
    db.identity.save("id-alice", b"k1", b"c1", 1.0)
    with pytest.raises(DuplicateError):
        db.identity.save("id-bob", b"k2", b"c2", 2.0)
    record = db.identity.get()
    assert record is not None
    assert record.identity_id == "id-alice"


def test_identity_repr_hides_the_keystore(db: Database) -> None:
    db.identity.save("id-alice", b"SECRET-KEYS", b"card", 1.0)
    assert "SECRET-KEYS" not in repr(db.identity.get())


def test_contact_round_trip_by_name_and_identity(db: Database) -> None:
    added = db.contacts.add("bob", "id-bob", b"bob-card", 5.0)
    assert added == ContactRecord("bob", "id-bob", b"bob-card", 5.0)
    assert db.contacts.get_by_name("bob") == added
    assert db.contacts.get_by_identity("id-bob") == added
    assert db.contacts.get_by_name("carol") is None
    assert db.contacts.get_by_identity("id-carol") is None


def test_contacts_are_listed_by_name(db: Database) -> None:
    for name in ("carol", "alice", "bob"):
        db.contacts.add(name, f"id-{name}", b"", 0.0)
    assert [c.name for c in db.contacts.list()] == ["alice", "bob", "carol"]


@pytest.mark.parametrize(
    ("name", "identity_id"),
    [("bob", "id-other"), ("other", "id-bob")],
    ids=["same-name", "same-identity"],
)
def test_duplicate_contact_is_refused(db: Database, name: str, identity_id: str) -> None:
    db.contacts.add("bob", "id-bob", b"card", 1.0)
    with pytest.raises(DuplicateError):
        db.contacts.add(name, identity_id, b"card2", 2.0)
    assert db.contacts.list() == [ContactRecord("bob", "id-bob", b"card", 1.0)]


def test_duplicate_error_is_a_caller_value_error(db: Database) -> None:
    db.contacts.add("bob", "id-bob", b"", 0.0)
    with pytest.raises(ValueError, match="bob"):
        db.contacts.add("bob", "id-bob", b"", 0.0)


def test_contact_remove(db: Database) -> None:
    db.contacts.add("bob", "id-bob", b"card", 1.0)
    assert db.contacts.remove("id-bob") is True
    assert db.contacts.remove("id-bob") is False
    assert db.contacts.get_by_name("bob") is None
    db.contacts.add("bob", "id-bob2", b"card", 2.0)  # the name is free again


def test_contact_replace_keeps_name_and_date(db: Database) -> None:
    db.contacts.add("bob", "id-bob", b"old-card", 5.0)
    db.contacts.add("carol", "id-carol", b"carol-card", 6.0)
    replaced = db.contacts.replace("id-bob", "id-bob-2", b"new-card")
    assert replaced == ContactRecord("bob", "id-bob-2", b"new-card", 5.0)
    assert db.contacts.get_by_identity("id-bob") is None
    assert db.contacts.get_by_identity("id-bob-2") == replaced
    assert db.contacts.get_by_name("bob") == replaced
    assert db.contacts.replace("id-nobody", "id-x", b"card") is None


def test_contact_replace_onto_a_taken_id_changes_nothing(db: Database) -> None:
    db.contacts.add("bob", "id-bob", b"bob-card", 5.0)
    db.contacts.add("carol", "id-carol", b"carol-card", 6.0)
    before = db.contacts.list()
    with pytest.raises(DuplicateError):
        db.contacts.replace("id-bob", "id-carol", b"card")
    assert db.contacts.list() == before
