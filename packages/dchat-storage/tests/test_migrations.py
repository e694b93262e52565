"""Packaged Alembic migrations: upgrade path, model consistency, re-open."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from dchat_storage import Database, StorageUnavailableError, open_database
from dchat_storage._database import HEAD_REVISION
from dchat_storage._engine import WRITE_OPTION, create_sqlite_engine
from dchat_storage._migrate import alembic_config, current_revision, head_revision, upgrade
from dchat_storage._schema import metadata


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Connection]:
    engine = create_sqlite_engine(tmp_path / "m.sqlite3")
    try:
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection:
            yield connection
    finally:
        engine.dispose()


def _revisions_oldest_first() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_upgrade_step_by_step_from_base_reaches_head(conn: Connection) -> None:
    revisions = _revisions_oldest_first()
    assert revisions[-1] == head_revision()
    with conn.begin():
        assert current_revision(conn) is None
    for revision in revisions:
        with conn.begin():
            upgrade(conn, revision)
        with conn.begin():
            assert current_revision(conn) == revision
    with conn.begin():
        assert set(inspect(conn).get_table_names()) >= set(metadata.tables)


def test_migrated_schema_matches_the_models(conn: Connection) -> None:
    with conn.begin():
        upgrade(conn)
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_downgrade_to_base_and_up_again(conn: Connection) -> None:
    with conn.begin():
        upgrade(conn)
    with conn.begin():
        command.downgrade(alembic_config(conn), "base")
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    with conn.begin():
        upgrade(conn)
        assert current_revision(conn) == head_revision()


def test_failed_migration_leaves_no_partial_schema(conn: Connection) -> None:
    # A table the first revision wants to create already exists, so it fails half-way.
    with conn.begin():
        conn.exec_driver_sql("CREATE TABLE outbox (x INTEGER)")
    with pytest.raises(Exception, match="outbox"), conn.begin():
        upgrade(conn)
    with conn.begin():
        assert set(inspect(conn).get_table_names()) == {"outbox"}


def test_open_migrates_to_head_and_reopen_is_a_no_op(db_path: Path) -> None:
    with open_database(db_path) as db:
        db.contacts.add("bob", "id-bob", b"", 0.0)
    engine = create_sqlite_engine(db_path)
    try:
        with engine.connect() as c:
            assert current_revision(c) == head_revision()
            schema_before = c.exec_driver_sql("SELECT sql FROM sqlite_master").all()
    finally:
        engine.dispose()
    with open_database(db_path) as db:
        assert [c.name for c in db.contacts.list()] == ["bob"]
    engine = create_sqlite_engine(db_path)
    try:
        with engine.connect() as c:
            assert c.exec_driver_sql("SELECT sql FROM sqlite_master").all() == schema_before
    finally:
        engine.dispose()


def test_database_from_a_newer_release_is_refused(db_path: Path) -> None:
    open_database(db_path).close()
    engine = create_sqlite_engine(db_path)
    try:
        with engine.connect() as c, c.begin():
            c.execute(text("UPDATE alembic_version SET version_num = 'fffffffffff'"))
    finally:
        engine.dispose()
    with pytest.raises(StorageUnavailableError, match="newer release"):
        open_database(db_path)


# -- 0001 -> head with data, on both backends ------------------------------------------------

_V1_ROWS = {
    "identity": [
        {"slot": 1, "identity_id": "id-me", "keystore": b"ks", "card": b"me", "created_at": 1.0}
    ],
    "contacts": [
        {"identity_id": "id-bob", "name": "bob", "card": b"bob-card", "added_at": 2.0},
        {"identity_id": "id-al", "name": "al", "card": b"al-card", "added_at": 3.0},
    ],
    "messages": [
        {
            "seq": n + 1,
            "message_id": n.to_bytes(16, "big"),
            "direction": "in" if n % 2 else "out",
            "peer_id": "id-bob",
            "body": f"old message {n}",
            "sent_at": float(n),
            "stored_at": float(n),
        }
        for n in range(700)  # more than one copy batch
    ],
    "outbox": [
        {
            "seq": 1,
            "message_id": b"\x01" * 16,
            "relay": "r:1",
            "mailbox": b"box",
            "envelope": b"env",
            "attempts": 2,
            "enqueued_at": 1.0,
            "next_attempt_at": 5.0,
        }
    ],
    "mailbox_entries": [
        {
            "mailbox": b"box",
            "entry_id": b"e" * 32,
            "envelope": b"sealed",
            "size": 6,
            "received_at": 4.0,
        }
    ],
}


def _v1_database(target: str, engine_factory: Callable[[], Engine]) -> None:
    """Create a database at revision 0001 holding :data:`_V1_ROWS`."""
    from sqlalchemy import MetaData, insert

    engine = engine_factory()
    try:
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as c, c.begin():
            upgrade(c, "0001")
            tables = MetaData()
            tables.reflect(c)
            for name, rows in _V1_ROWS.items():
                c.execute(insert(tables.tables[name]), rows)
    finally:
        engine.dispose()
    del target


def _check_upgraded(db: Database) -> None:
    from dchat_storage import ContactRecord, IdentityRecord, MessageRecord, OutboxItem

    assert db.identity.get() == IdentityRecord("id-me", b"ks", b"me", 1.0)
    assert db.contacts.list() == [
        ContactRecord("al", "id-al", b"al-card", 3.0),
        ContactRecord("bob", "id-bob", b"bob-card", 2.0),
    ]
    assert db.messages.count() == 700
    assert db.messages.get((5).to_bytes(16, "big")) == MessageRecord(
        (5).to_bytes(16, "big"), "in", "id-bob", "old message 5", 5.0, 5.0
    )
    assert [m.body for m in db.messages.list("id-bob", limit=2)] == [
        "old message 698",
        "old message 699",
    ]
    assert db.outbox.due(10.0) == [OutboxItem(b"\x01" * 16, "r:1", b"box", b"env", 2, 5.0, 1.0)]
    assert [e.envelope for e in db.mailboxes.fetch(b"box")] == [b"sealed"]
    assert db.mailboxes.total_bytes(b"box") == len(b"sealed")  # 0007 counted what was held
    # New rows continue after the migrated ones (the sequence was moved on).
    db.messages.add(b"new", "in", "id-bob", "after upgrade", 1000.0, 1000.0)
    assert db.messages.list(limit=1)[0].body == "after upgrade"


def test_data_written_at_0001_survives_upgrade_to_head_sqlite(db_path: Path) -> None:
    db_path.parent.mkdir()
    _v1_database(str(db_path), lambda: create_sqlite_engine(db_path))
    with open_database(db_path) as db:
        _check_upgraded(db)


def test_data_written_at_0001_survives_upgrade_to_head_postgresql(pg_empty_url: str) -> None:
    from dchat_storage._postgres import create_postgres_engine, postgres_url

    _v1_database(pg_empty_url, lambda: create_postgres_engine(postgres_url(pg_empty_url)))
    with open_database(pg_empty_url) as db:
        _check_upgraded(db)


def test_upgraded_clear_database_can_then_be_sealed(db_path: Path) -> None:
    from dchat_storage.lowlevel import StorageKey

    db_path.parent.mkdir()
    _v1_database(str(db_path), lambda: create_sqlite_engine(db_path))
    key = StorageKey.generate()
    open_database(db_path, key=key).close()
    assert b"old message 5" not in db_path.read_bytes()
    with open_database(db_path, key=key) as db:
        _check_upgraded(db)


def test_postgresql_schema_matches_the_models(pg_empty_url: str) -> None:
    from dchat_storage._postgres import create_postgres_engine, postgres_url

    engine = create_postgres_engine(postgres_url(pg_empty_url))
    try:
        with engine.connect() as c, c.begin():
            upgrade(c)
            context = MigrationContext.configure(c, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
        with engine.connect() as c, c.begin():
            command.downgrade(alembic_config(c), "base")
        with engine.connect() as c, c.begin():
            upgrade(c)
            assert current_revision(c) == head_revision()
    finally:
        engine.dispose()


def test_sealed_database_refuses_downgrade(db_path: Path) -> None:
    from dchat_storage.lowlevel import StorageKey

    open_database(db_path, key=StorageKey.generate()).close()
    engine = create_sqlite_engine(db_path)
    try:
        with (
            engine.connect().execution_options(**{WRITE_OPTION: True}) as c,
            pytest.raises(RuntimeError, match="encrypted"),
            c.begin(),
        ):
            command.downgrade(alembic_config(c), "0001")
    finally:
        engine.dispose()


def test_the_head_known_without_alembic_is_alembics_head() -> None:
    assert head_revision() == HEAD_REVISION


def test_an_up_to_date_database_opens_without_loading_alembic(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    open_database(path).close()  # created and migrated here
    probe = (
        "import sys; from dchat_storage import open_database; "
        f"open_database({str(path)!r}).close(); print('alembic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


def test_a_database_behind_head_is_still_migrated(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = create_sqlite_engine(path)
    with engine.connect() as conn, conn.begin():
        upgrade(conn, "0007")
    engine.dispose()
    with open_database(path) as db, db._access.read("check") as conn:
        assert current_revision(conn) == HEAD_REVISION
