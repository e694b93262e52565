"""Packaged Alembic migrations: upgrade path, model consistency, re-open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from dchat_storage import StorageUnavailableError, open_database
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
