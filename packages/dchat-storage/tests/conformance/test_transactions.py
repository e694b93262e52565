"""Nested transactions: savepoints, writes without one (and the doom they carry), undo hooks.

Runs on every backend: PostgreSQL aborts a transaction at the first failed
statement where SQLite undoes only the statement, and the rules here must hold
on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dchat_storage import Database, DatabaseClosedError, DuplicateError, NotFoundError
from dchat_storage._prepared import Prepared
from dchat_storage.lowlevel import TransactionDoomedError

if TYPE_CHECKING:
    from collections.abc import Callable


class Boom(Exception):
    """Raised by a test to roll a block back."""


def _in_transaction(db: Database, *steps: Callable[[], object]) -> None:
    """Run ``steps`` in one (possibly nested) transaction of ``db``."""
    with db.transaction():
        for step in steps:
            step()


def _boom() -> None:
    raise Boom


def _duplicate_enqueue(db: Database) -> None:
    """A write without a savepoint of its own that fails (the id is queued already)."""
    db.outbox.enqueue(b"m1", "relay", b"box", b"again", 2.0)


def _caught_duplicate(db: Database) -> None:
    """A caller that catches the failed write and goes on (the bug the doom catches)."""
    with pytest.raises(DuplicateError):
        _duplicate_enqueue(db)


def test_a_failed_savepoint_write_is_undone_alone(db: Database) -> None:
    def inner() -> None:
        with pytest.raises(Boom):
            _in_transaction(db, lambda: db.settings.set("undone", b"2", 1.0), _boom)

    _in_transaction(
        db,
        lambda: db.settings.set("kept", b"1", 1.0),
        inner,
        lambda: db.settings.set("kept too", b"3", 1.0),
    )
    assert db.settings.get("kept") == b"1"
    assert db.settings.get("kept too") == b"3"
    assert db.settings.get("undone") is None


def test_levels_in_a_savepoint_with_no_write_yet_share_it_and_undo_only_their_own(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grouped call, the agent's transaction and the engine's: one SAVEPOINT, not three.

    Sharing is safe only while the enclosing level wrote nothing: once it has,
    an inner level opens its own (else its rollback would take the earlier write).
    """
    opened: list[str] = []
    run = Prepared.run

    def counting(self: Prepared, conn: object, params: object = None) -> object:
        if repr(self).startswith("Prepared('SAVEPOINT"):
            opened.append(repr(self))
        return run(self, conn, params)  # type: ignore[arg-type]

    monkeypatch.setattr(Prepared, "run", counting)

    def add(name: bytes) -> None:
        db.messages.add(name, "out", "id-bob", "text", 1.0, 1.0)

    def clean_so_far() -> None:
        with pytest.raises(NotFoundError):  # a write with a savepoint that fails at once
            db.messages.mark_read(b"nope", 1.0)
        with pytest.raises(Boom):  # two levels deep
            _in_transaction(db, lambda: _in_transaction(db, lambda: add(b"undone"), _boom))
        with pytest.raises(TransactionDoomedError):  # a failed statement (PostgreSQL aborts)
            _in_transaction(db, lambda: add(b"undone too"), lambda: _caught_duplicate(db))
        add(b"after")  # the call goes on after catching them

    def written_first() -> None:
        add(b"before")
        with pytest.raises(Boom):
            _in_transaction(db, lambda: add(b"undone as well"), _boom)

    db.outbox.enqueue(b"m1", "relay", b"box", b"env", 1.0)
    with db.transaction():  # a commit group of two calls, each in its savepoint
        _in_transaction(db, clean_so_far)
        _in_transaction(db, written_first)
    assert [m.message_id for m in db.messages.list()] == [b"after", b"before"]
    assert len(opened) == 3  # one per call, and the inner level of the second


def test_a_caught_failure_of_a_write_without_savepoint_dooms_the_transaction(
    db: Database,
) -> None:
    db.outbox.enqueue(b"m1", "relay", b"box", b"env", 1.0)
    refused: list[str] = []

    def go_on() -> None:  # the caller goes on: refused at once
        with pytest.raises(TransactionDoomedError):
            db.settings.set("after", b"2", 1.0)
        refused.append("after")

    with pytest.raises(TransactionDoomedError):
        _in_transaction(
            db, lambda: db.settings.set("before", b"1", 1.0), lambda: _caught_duplicate(db), go_on
        )
    assert refused == ["after"]
    assert db.settings.get("before") is None
    assert db.settings.get("after") is None
    assert [item.envelope for item in db.outbox.queued(10)] == [b"env"]
    db.settings.set("later", b"3", 1.0)  # the database is fine afterwards
    assert db.settings.get("later") == b"3"


def test_a_doomed_savepoint_rolls_back_alone_and_the_transaction_goes_on(db: Database) -> None:
    db.outbox.enqueue(b"m1", "relay", b"box", b"env", 1.0)

    def inner() -> None:
        with pytest.raises(TransactionDoomedError):
            _in_transaction(
                db, lambda: db.settings.set("undone", b"2", 1.0), lambda: _caught_duplicate(db)
            )

    _in_transaction(
        db,
        lambda: db.settings.set("kept", b"1", 1.0),
        inner,
        lambda: db.settings.set("kept too", b"3", 1.0),  # allowed: the savepoint took it
    )
    assert db.settings.get("kept") == b"1"
    assert db.settings.get("kept too") == b"3"
    assert db.settings.get("undone") is None


def test_a_failure_that_propagates_ends_the_level_as_an_ordinary_rollback(db: Database) -> None:
    db.outbox.enqueue(b"m1", "relay", b"box", b"env", 1.0)

    def inner() -> None:
        with pytest.raises(DuplicateError):
            _in_transaction(
                db, lambda: db.settings.set("undone", b"1", 1.0), lambda: _duplicate_enqueue(db)
            )

    _in_transaction(db, inner, lambda: db.settings.set("kept", b"2", 1.0))
    assert db.settings.get("undone") is None
    assert db.settings.get("kept") == b"2"


def test_undo_hooks_run_for_what_is_rolled_back_and_never_after_a_commit(db: Database) -> None:
    ran: list[str] = []

    def note(what: str) -> Callable[[], None]:
        return lambda: db.on_rollback(lambda: ran.append(what))

    def rolled_back() -> None:
        with pytest.raises(Boom):
            _in_transaction(db, note("inner 1"), note("inner 2"), _boom)

    released = lambda: _in_transaction(db, note("released"))  # noqa: E731
    _in_transaction(db, note("committed"), rolled_back, released)
    assert ran == ["inner 2", "inner 1"]  # newest first; the released one stays unrun

    ran.clear()
    with pytest.raises(Boom):  # released into the outer level, which rolls back, taking it along
        _in_transaction(db, released, note("outer"), _boom)
    assert ran == ["outer", "released"]

    db.on_rollback(lambda: ran.append("outside"))  # nothing to roll back: dropped
    _in_transaction(db)
    assert ran == ["outer", "released"]


def test_undo_hooks_run_when_the_commit_itself_fails(db: Database) -> None:
    ran: list[str] = []
    db.outbox.enqueue(b"m1", "relay", b"box", b"env", 1.0)
    with pytest.raises(TransactionDoomedError):
        _in_transaction(
            db, lambda: db.on_rollback(lambda: ran.append("undone")), lambda: _caught_duplicate(db)
        )
    assert ran == ["undone"]


def test_a_doomed_transaction_refuses_reads_and_writes_at_once(db: Database) -> None:
    db.outbox.enqueue(b"m1", "relay", b"box", b"env", 1.0)
    refused: list[str] = []

    def read() -> None:
        with pytest.raises(TransactionDoomedError):
            db.settings.get("anything")
        refused.append("read")

    def write() -> None:
        with pytest.raises(TransactionDoomedError):
            db.settings.set("anything", b"1", 1.0)
        refused.append("write")

    with pytest.raises(TransactionDoomedError):
        _in_transaction(db, lambda: _caught_duplicate(db), read, write)
    assert refused == ["read", "write"]
    assert db.settings.get("anything") is None


def test_a_closed_database_refuses_a_transaction(db: Database) -> None:
    db.close()
    with pytest.raises(DatabaseClosedError):
        _in_transaction(db)


# -- deferred settings writes (Access.defer) ----------------------------------------------


def test_a_setting_replaced_many_times_in_a_transaction_is_written_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dchat_storage import _settings

    upserts: list[object] = []
    real = _settings._UPSERT

    class Counting:
        def run(self, conn: object, params: object = None) -> object:
            upserts.append(params)
            return real.run(conn, params)  # type: ignore[arg-type]

    monkeypatch.setattr(_settings, "_UPSERT", Counting())
    with db.transaction():
        for i in range(5):
            with db.transaction():  # as the group commit runs each call in a savepoint
                db.settings.set("session", b"v%d" % i, float(i))
            assert db.settings.get("session") == b"v%d" % i  # read-your-writes
    assert len(upserts) == 1
    assert db.settings.get("session") == b"v4"


def test_a_rolled_back_savepoint_never_serves_or_stores_its_deferred_value(db: Database) -> None:
    db.settings.set("k", b"stored", 1.0)
    with db.transaction():
        db.settings.set("k", b"outer", 2.0)
        seen: list[bytes | None] = []
        inner = (
            lambda: db.settings.set("k", b"inner", 3.0),
            lambda: seen.append(db.settings.get("k")),
        )
        with pytest.raises(Boom):
            _in_transaction(db, *inner, _boom)
        assert seen == [b"inner"]
        assert db.settings.get("k") == b"outer"
        with db.transaction():
            db.settings.set("k", b"released", 4.0)
        assert db.settings.get("k") == b"released"
    assert db.settings.get("k") == b"released"
    with pytest.raises(Boom):
        _in_transaction(db, lambda: db.settings.set("k", b"lost", 5.0), _boom)
    assert db.settings.get("k") == b"released"


def test_a_deferred_setting_deleted_in_the_same_transaction_is_gone(db: Database) -> None:
    db.settings.set("k", b"stored", 1.0)
    with db.transaction():
        db.settings.set("k", b"new", 2.0)
        assert db.settings.delete("k") is True
        assert db.settings.get("k") is None
        assert db.settings.delete("k") is False
        db.settings.set("j", b"later", 3.0)
    assert db.settings.get("k") is None
    assert db.settings.get("j") == b"later"


class _Counter:
    """A value that changes in place, counting its encodings."""

    def __init__(self) -> None:
        self.value = 0
        self.encoded = 0

    def to_bytes(self) -> bytes:
        self.encoded += 1
        return b"n%d" % self.value


def test_a_value_set_later_is_encoded_once_at_the_commit_as_it_is_then(db: Database) -> None:
    counter = _Counter()
    with db.transaction():
        for _ in range(5):
            with db.transaction():  # as the group commit runs each call in a savepoint
                counter.value += 1
                db.settings.set_later("counter", counter, 1.0)
        assert counter.encoded == 0
        assert db.settings.get("counter") == b"n5"  # a read encodes it as it is now
        counter.value += 1  # changed after the last set: the commit takes it too
    assert counter.encoded == 2
    assert db.settings.get("counter") == b"n6"


def test_a_value_set_later_in_a_rolled_back_savepoint_is_never_stored(db: Database) -> None:
    kept, lost = _Counter(), _Counter()
    lost.value = 99
    with db.transaction():
        db.settings.set_later("k", kept, 1.0)
        with pytest.raises(Boom):
            _in_transaction(db, lambda: db.settings.set_later("k", lost, 2.0), _boom)
        assert db.settings.get("k") == b"n0"
    assert lost.encoded == 0
    assert db.settings.get("k") == b"n0"
    db.settings.set_later("k", lost, 3.0)  # outside a transaction: written at once
    assert lost.encoded == 1
    assert db.settings.get("k") == b"n99"
