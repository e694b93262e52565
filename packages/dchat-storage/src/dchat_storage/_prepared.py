"""Statements that run for every message, sent straight to the database driver.

Theory of operation: a repository call runs inside SQLAlchemy's transaction on
one connection (``_access``). For most statements SQLAlchemy's Core is worth
its cost; for the few that run several times per message (engine state,
message and event rows, the outbox, the relay's mailbox) its execution path
(caching keys, execution contexts, result objects: some 10-30 µs a statement)
cost more than SQLite itself. A :class:`Prepared` statement is written once in
the SQL both backends share, with ``:name`` parameters, and runs on the
DB-API connection underneath the same SQLAlchemy connection, so it takes part
in the same transaction and savepoints. For psycopg the parameters are
rewritten once to its ``%(name)s`` style; the SQL must therefore hold no other
``:`` or ``%``. The drivers keep their own caches of prepared statements.

Driver errors are translated at the same boundary as every other
(``_engine.translate_errors``); a unique-key violation is one of
:func:`integrity_errors`.
"""

from __future__ import annotations

import re
import sqlite3
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy.exc import IntegrityError

from ._engine import pg_errors

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Connection

__all__ = ("Prepared", "integrity_errors")


def integrity_errors() -> tuple[type[Exception], ...]:
    """A unique-key (or other constraint) violation, from SQLAlchemy or either driver."""
    return (IntegrityError, sqlite3.IntegrityError, *pg_errors("IntegrityError"))


_PARAM: Final = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


class Prepared:
    """One SQL statement run on the driver connection of a SQLAlchemy connection.

    Args:
        sql: The statement, with ``:name`` parameters.
    """

    __slots__ = ("_sql", "_sql_pg")

    def __init__(self, sql: str) -> None:
        if "%" in sql or "::" in sql:
            raise ValueError("a prepared statement holds no '%' and no '::'")
        self._sql = sql
        self._sql_pg = _PARAM.sub(r"%(\1)s", sql)

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """Execute in ``conn``'s transaction; returns the DB-API cursor (rows, rowcount)."""
        driver = conn.connection.dbapi_connection
        sql = self._sql if isinstance(driver, sqlite3.Connection) else self._sql_pg
        return driver.execute(sql, params or {})  # type: ignore[union-attr]

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per row of ``rows`` in one driver call (``executemany``)."""
        driver = conn.connection.dbapi_connection
        if isinstance(driver, sqlite3.Connection):
            driver.executemany(self._sql, rows)
            return
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            cursor.executemany(self._sql_pg, rows)

    def one(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row (a tuple), or None."""
        return self.run(conn, params).fetchone()

    def __repr__(self) -> str:
        return f"Prepared({self._sql!r})"
