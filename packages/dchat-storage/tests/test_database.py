"""Opening, closing, connection settings and hostile files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from sqlalchemy import text

from dchat_core import CallerError, TransportError
from dchat_storage import (
    Database,
    DatabaseClosedError,
    NotFoundError,
    StorageUnavailableError,
    open_database,
)
from dchat_storage.lowlevel import DatabaseInUseError


def test_open_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "db.sqlite3"
    with open_database(path) as db:
        assert db.path == path.resolve()
        assert db.integrity_check() == "ok"
    assert path.is_file()


_OPEN_SQLITE = """
import sys
from dchat_storage import open_database
open_database(sys.argv[1], passphrase=b"pw").close()
print("psycopg" in sys.modules, "dchat_storage._engine" in sys.modules)
"""


def test_a_sqlite_database_opens_without_loading_the_postgresql_driver(tmp_path: Path) -> None:
    """psycopg is some 0.04 s of every node start; only a PostgreSQL database loads it."""
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_SQLITE, str(tmp_path / "node.db")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["False", "True"]


def test_every_connection_gets_the_durability_pragmas(db: Database) -> None:
    # Two connections checked out at once, so both are real pool members.
    engine = db._access._engine
    with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            pragmas = [
                conn.execute(text(f"PRAGMA {name}")).scalar_one()
                for name in (
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "secure_delete",
                    "busy_timeout",
                )
            ]
            assert pragmas == ["wal", 2, 1, 1, 30000]


def test_close_is_idempotent_and_later_calls_fail(db_path: Path) -> None:
    db = open_database(db_path)
    db.close()
    db.close()
    with pytest.raises(DatabaseClosedError):
        db.mailboxes.count()
    with pytest.raises(CallerError):
        db.identity.save("id", b"", b"", 0.0)


def test_context_manager_closes(db_path: Path) -> None:
    with open_database(db_path) as db:
        db.messages.add(b"m", "in", "p", "x", 0.0, 0.0)
    with pytest.raises(DatabaseClosedError):
        db.messages.get(b"m")
    # Closing checkpoints the WAL into the main file.
    assert not db_path.with_name(db_path.name + "-wal").exists()


def test_random_bytes_file_is_refused_and_left_intact(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db"
    garbage = os.urandom(64 * 1024)
    path.write_bytes(garbage)
    with pytest.raises(StorageUnavailableError) as caught:
        open_database(path)
    assert isinstance(caught.value, TransportError)
    assert path.read_bytes() == garbage


def test_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailableError):
        open_database(tmp_path)


def test_parent_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageUnavailableError):
        open_database(tmp_path / "file" / "db.sqlite3")


def test_corrupted_pages_are_reported(db_path: Path) -> None:
    with open_database(db_path) as db:
        for n in range(300):
            db.mailboxes.put(b"box", n.to_bytes(4, "big") * 256, 0.0)
    data = bytearray(db_path.read_bytes())
    page = 4096
    data[3 * page : 3 * page + 512] = os.urandom(512)
    db_path.write_bytes(bytes(data))
    try:
        db = open_database(db_path)
    except StorageUnavailableError:
        return  # Refusing to open is an acceptable report too.
    with db:
        try:
            report = db.integrity_check()
        except StorageUnavailableError:
            return
        assert report != "ok"


async def test_usable_from_trio_worker_threads(db: Database) -> None:
    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(
                trio.to_thread.run_sync, db.mailboxes.put, b"box", n.to_bytes(2, "big"), 0.0
            )
    assert await trio.to_thread.run_sync(db.mailboxes.count) == 20


def test_a_postgresql_database_is_claimed_by_one_handle(pg_url: str) -> None:
    with open_database(pg_url) as first, open_database(pg_url) as second:
        first.claim_exclusive()
        first.claim_exclusive()  # again: harmless
        with pytest.raises(DatabaseInUseError) as caught:
            second.claim_exclusive()
        assert caught.value.code == "database_in_use"
        assert "another node is using the database" in str(caught.value)
        first.close()  # closing drops the claim
        second.claim_exclusive()


def test_claiming_a_sqlite_database_is_left_to_the_data_directory_lock(db_path: Path) -> None:
    with open_database(db_path) as first, open_database(db_path) as second:
        first.claim_exclusive()
        second.claim_exclusive()


def test_mailbox_count_counts_distinct_mailboxes_with_mail(db: Database) -> None:
    assert db.mailboxes.mailbox_count() == 0
    for box, n in ((b"a", 1), (b"a", 2), (b"b", 3)):
        db.mailboxes.put(box, n.to_bytes(2, "big"), 0.0)
    assert db.mailboxes.mailbox_count() == 2
    assert db.mailboxes.usage() == (3, 6)
    db.mailboxes.ack(b"b", [entry.entry_id for entry in db.mailboxes.fetch(b"b")])
    assert db.mailboxes.mailbox_count() == 1


def test_set_card_replaces_the_stored_identity_card(db: Database) -> None:
    with pytest.raises(NotFoundError):
        db.identity.set_card(b"card")
    db.identity.save("id", b"keystore", b"old card", 5.0)
    db.identity.set_card(b"new card")
    record = db.identity.get()
    assert record is not None
    assert (record.identity_id, record.keystore, record.card) == ("id", b"keystore", b"new card")
