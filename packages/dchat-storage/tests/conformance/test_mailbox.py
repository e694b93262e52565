"""MailboxRepo: the relay's envelope store."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_storage import Database, InvalidArgumentError, MailboxEntry

BOX_A = b"\xaa" * 32
BOX_B = b"\xbb" * 32


def test_entry_id_is_personalized_blake2b_256(db: Database) -> None:
    entry_id, stored = db.mailboxes.put(BOX_A, b"sealed", 1.0)
    expected = hashlib.blake2b(b"sealed", digest_size=32, person=b"dchat-envelope").digest()
    assert (entry_id, stored) == (expected, True)


def test_put_fetch_round_trip_oldest_first(db: Database) -> None:
    ids = [
        db.mailboxes.put(BOX_A, env, at)[0] for env, at in ((b"2", 2.0), (b"1", 1.0), (b"3", 2.0))
    ]
    fetched = db.mailboxes.fetch(BOX_A)
    assert fetched == [
        MailboxEntry(ids[1], BOX_A, b"1", 1.0),
        MailboxEntry(ids[0], BOX_A, b"2", 2.0),
        MailboxEntry(ids[2], BOX_A, b"3", 2.0),
    ]
    assert db.mailboxes.fetch(BOX_A, limit=1) == fetched[:1]
    assert db.mailboxes.fetch(BOX_B) == []


def test_put_is_idempotent(db: Database) -> None:
    first = db.mailboxes.put(BOX_A, b"env", 1.0)
    again = db.mailboxes.put(BOX_A, b"env", 9.0)
    assert again == (first[0], False)
    assert db.mailboxes.fetch(BOX_A) == [MailboxEntry(first[0], BOX_A, b"env", 1.0)]


def test_same_envelope_in_another_mailbox_does_not_block_delivery(db: Database) -> None:
    # Someone who saw the envelope must not be able to pre-empt the real mailbox.
    entry_id, _ = db.mailboxes.put(BOX_B, b"env", 1.0)
    assert db.mailboxes.put(BOX_A, b"env", 2.0) == (entry_id, True)
    assert db.mailboxes.count(BOX_A) == 1


def test_ack_deletes_only_that_mailboxs_entries(db: Database) -> None:
    a1, _ = db.mailboxes.put(BOX_A, b"a1", 1.0)
    a2, _ = db.mailboxes.put(BOX_A, b"a2", 2.0)
    b1, _ = db.mailboxes.put(BOX_B, b"b1", 3.0)
    shared, _ = db.mailboxes.put(BOX_B, b"a1", 4.0)
    assert shared == a1
    assert db.mailboxes.ack(BOX_A, [a1, b1, a1, b"\x00" * 32]) == 1
    assert [e.entry_id for e in db.mailboxes.fetch(BOX_A)] == [a2]
    assert [e.entry_id for e in db.mailboxes.fetch(BOX_B)] == [b1, shared]
    assert db.mailboxes.ack(BOX_A, []) == 0


def test_ack_of_many_ids_in_one_call(db: Database) -> None:
    ids = [db.mailboxes.put(BOX_A, n.to_bytes(4, "big"), 0.0)[0] for n in range(1200)]
    assert db.mailboxes.ack(BOX_A, ids) == 1200
    assert db.mailboxes.count(BOX_A) == 0


def test_count_and_total_bytes(db: Database) -> None:
    assert db.mailboxes.total_bytes(BOX_A) == 0
    assert db.mailboxes.usage() == (0, 0)
    db.mailboxes.put(BOX_A, b"x" * 100, 0.0)
    db.mailboxes.put(BOX_A, b"y" * 23, 0.0)
    db.mailboxes.put(BOX_A, b"y" * 23, 0.0)
    db.mailboxes.put(BOX_B, b"z" * 7, 0.0)
    assert (db.mailboxes.count(BOX_A), db.mailboxes.count(BOX_B), db.mailboxes.count()) == (2, 1, 3)
    assert (db.mailboxes.total_bytes(BOX_A), db.mailboxes.total_bytes(BOX_B)) == (123, 7)
    assert db.mailboxes.usage() == (3, 130)  # every mailbox, for the relay's metrics


def test_fetch_rejects_non_positive_limit(db: Database) -> None:
    with pytest.raises(InvalidArgumentError):
        db.mailboxes.fetch(BOX_A, limit=0)


def test_put_bulk_stores_like_put_and_skips_what_is_held(db: Database) -> None:
    held, _ = db.mailboxes.put(BOX_A, b"held", 1.0)
    new = hashlib.blake2b(b"new", digest_size=32, person=b"dchat-envelope").digest()
    db.mailboxes.put_bulk(
        [(BOX_A, b"held", 5.0), (BOX_A, b"new", 2.0), (BOX_B, b"held", 3.0), (BOX_A, b"new", 4.0)]
    )
    assert db.mailboxes.fetch(BOX_A) == [
        MailboxEntry(held, BOX_A, b"held", 1.0),
        MailboxEntry(new, BOX_A, b"new", 2.0),
    ]
    assert db.mailboxes.fetch(BOX_B) == [MailboxEntry(held, BOX_B, b"held", 3.0)]
    assert db.mailboxes.total_bytes(BOX_A) == len(b"held") + len(b"new")
    db.mailboxes.put_bulk([])
    assert db.mailboxes.count() == 3


def _usage_rows(db: Database) -> dict[bytes, tuple[int, int]]:
    with db._access.read("test") as conn:
        kept = conn.exec_driver_sql("SELECT mailbox, entries, size FROM mailbox_usage").all()
        counted = conn.exec_driver_sql(
            "SELECT mailbox, count(*), sum(size) FROM mailbox_entries GROUP BY mailbox"
        ).all()
    assert {bytes(m): (e, s) for m, e, s in kept} == {bytes(m): (e, s) for m, e, s in counted}
    return {bytes(m): (e, s) for m, e, s in kept}


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["put", "bulk", "ack", "expire", "sweep"]),
        st.sampled_from([BOX_A, BOX_B, b"\xcc" * 32]),
        st.integers(0, 7),
    ),
    max_size=25,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_OPS)
def test_the_usage_counters_always_match_a_recount(
    db: Database, ops: list[tuple[str, bytes, int]]
) -> None:
    """Every path that stores or deletes entries keeps ``mailbox_usage`` exact."""
    from dchat_storage import LifecyclePolicy

    with db.transaction():  # a clean slate per example (the fixture is shared)
        db.mailboxes.expire(float("inf"))
    for op, box, n in ops:
        envelope = bytes([n]) * (n + 1)
        if op == "put":
            db.mailboxes.put(box, envelope, float(n))
        elif op == "bulk":
            db.mailboxes.put_bulk([(box, envelope, float(n)), (box, envelope + b"!", float(n))])
        elif op == "ack":
            db.mailboxes.ack(box, [e.entry_id for e in db.mailboxes.fetch(box)][: n + 1])
        elif op == "expire":
            db.mailboxes.expire(float(n))
        else:
            db.lifecycle.sweep(float(n) + 10.0, LifecyclePolicy(mailbox_ttl=10.0))
        usage = _usage_rows(db)
        assert all(entries > 0 for entries, _ in usage.values())  # no row for an empty mailbox
        assert db.mailboxes.total_bytes(box) == usage.get(box, (0, 0))[1]


def test_total_bytes_reads_one_row_however_full_the_mailbox(db: Database) -> None:
    """The quota check does not read the entries (it did: ~100 ms at a full mailbox)."""
    db.mailboxes.put_bulk([(BOX_A, i.to_bytes(3, "big") * 10, 0.0) for i in range(3000)])
    assert db.mailboxes.total_bytes(BOX_A) == 3000 * 30
    with db._access.write("test") as conn:
        conn.exec_driver_sql("UPDATE mailbox_usage SET size = 5")
    assert db.mailboxes.total_bytes(BOX_A) == 5
