"""SQLite engine set-up and translation of driver errors (SQLite and PostgreSQL).

Theory of operation: Python's ``sqlite3`` module, left to itself, opens
transactions lazily and only before DML, so reads are not snapshot-consistent
and a read-then-write transaction can fail with ``SQLITE_BUSY`` when it tries
to upgrade its lock. We therefore switch the driver to autocommit
(``isolation_level=None``) and let SQLAlchemy's ``begin`` event emit the
``BEGIN`` itself: plain ``BEGIN`` for reads, ``BEGIN IMMEDIATE`` for writes, so
a writer takes the write lock up front (waiting up to the busy timeout) and
never deadlocks half-way through.

psycopg is not imported here: a node on SQLite never loads the PostgreSQL
driver (about 0.04 s of every start). Its exceptions are caught through
:func:`pg_errors`, which finds them only once SQLAlchemy or
``claim_database`` has loaded the driver, the only way one can be raised.
"""

from __future__ import annotations

import sqlite3
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from ._errors import StorageCorruptError, StorageFullError, StorageUnavailableError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sqlalchemy import Connection, Engine
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = (
    "BUSY_TIMEOUT_S",
    "WRITE_OPTION",
    "classify",
    "create_sqlite_engine",
    "pg_errors",
    "translate_errors",
)

# How long a connection waits for another process's lock before giving up.
BUSY_TIMEOUT_S = 30.0

# Execution option that makes a connection's next transaction BEGIN IMMEDIATE.
WRITE_OPTION = "dchat_write"

# Applied to every new connection. ``synchronous=FULL`` fsyncs the WAL at every
# commit, so an acknowledged write survives power loss, not just a crash of this
# process (``NORMAL`` in WAL mode may lose the last commits on power loss).
# ``secure_delete`` overwrites deleted content in the file, so an expired
# disappearing message does not linger in free pages for a later key compromise.
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
    f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}",
)

# SQLite result codes (the low byte of ``sqlite_errorcode``) and PostgreSQL
# SQLSTATEs that mean "out of space" or "damaged", each with a typed error.
_SQLITE_FULL = 13
_SQLITE_CORRUPT = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
_PG_FULL = ("53100", "54000")  # disk_full, program_limit_exceeded
_PG_CORRUPT = ("XX001", "XX002")  # data_corrupted, index_corrupted


def create_sqlite_engine(path: Path) -> Engine:
    """Create an engine for the SQLite file at ``path`` with dchat's settings.

    Connections are pooled (a ``QueuePool``, the default for SQLite files) and
    may move between threads; each is used by one thread at a time.

    Args:
        path: The database file; created on first connect if missing.

    Returns:
        A configured engine. No connection is opened yet.
    """
    engine = create_engine(
        # URL.create, not an f-string: a path may contain '?' or '#'.
        URL.create("sqlite+pysqlite", database=str(path)),
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        pool_size=5,
        max_overflow=10,
        pool_timeout=BUSY_TIMEOUT_S,
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Autocommit at the driver level; _on_begin emits the real BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _PRAGMAS:
            cursor.execute(pragma)
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    except UnicodeDecodeError:
        # Python's sqlite3 decodes SQLite's message; a damaged schema puts the file's
        # bytes in it ("no such table: main.<bytes>"): a corruption, not a crash.
        raise sqlite3.DatabaseError("Could not decode to UTF-8: the schema is damaged") from None
    finally:
        cursor.close()
    if mode != "wal":
        # E.g. a read-only directory where the -wal/-shm files cannot be made.
        raise sqlite3.OperationalError(f"cannot enable WAL journal mode (got {mode!r})")


def _on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(WRITE_OPTION, False):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn SQLAlchemy and ``sqlite3`` errors into :class:`StorageUnavailableError`.

    Callers translate the errors they expect (unique-key violations) before
    they reach this boundary; anything left is a failure of the storage itself.

    Args:
        what: A short description of the operation, for the error message.

    Raises:
        StorageUnavailableError: The wrapped block raised a database error.
    """
    try:
        yield
    except _database_errors() as exc:
        detail = getattr(exc, "orig", None) or exc
        raise classify(detail)(f"{what}: {detail}") from exc


def pg_errors(name: str = "Error") -> tuple[type[Exception], ...]:
    """psycopg's exception class ``name`` if the driver is loaded, else nothing to catch."""
    psycopg = sys.modules.get("psycopg")
    return () if psycopg is None else (getattr(psycopg, name),)


def _database_errors() -> tuple[type[Exception], ...]:
    return (SQLAlchemyError, sqlite3.Error, *pg_errors())


def classify(error: BaseException) -> type[StorageUnavailableError]:
    """Pick the typed storage error for a driver exception.

    Args:
        error: The driver's exception (``sqlite3.Error`` or ``psycopg.Error``).

    Returns:
        :class:`StorageFullError`, :class:`StorageCorruptError` or, for
        anything else, :class:`StorageUnavailableError`.
    """
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        if code == _SQLITE_FULL:
            return StorageFullError
        if code in _SQLITE_CORRUPT:
            return StorageCorruptError
        # Raised by Python's sqlite3 module, not SQLite: we only ever write valid
        # UTF-8, so undecodable text in a column means the file was damaged.
        if str(error).startswith("Could not decode to UTF-8"):
            return StorageCorruptError
    elif isinstance(error, pg_errors()):
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate in _PG_FULL:
            return StorageFullError
        if sqlstate in _PG_CORRUPT:
            return StorageCorruptError
    return StorageUnavailableError
