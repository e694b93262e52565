"""PostgreSQL engine set-up (psycopg 3) and how a target names its backend.

Pool settings, and why (also in the README):

* ``pool_size=5, max_overflow=5``: a node uses one writer connection at a
  time (writes are serialized per process) plus a few concurrent readers, so
  ten connections per process is a ceiling, not a target. With PostgreSQL's
  default ``max_connections=100`` that leaves room for about ten node
  processes per server; put PgBouncer in front for more.
* ``pool_pre_ping=True``: a connection that the server or a firewall closed
  while idle is replaced on checkout instead of failing the next call; it costs
  one round trip per checkout, small next to a durable commit.
* ``pool_recycle=1800`` s: no connection lives long enough to meet idle
  timeouts of middleboxes.
* ``pool_timeout=30`` s, ``connect_timeout=10`` s, and server-side
  ``statement_timeout`` / ``lock_timeout`` of 30 s: every wait is bounded, as
  with SQLite's busy timeout.
* Isolation stays at READ COMMITTED with ``synchronous_commit`` on (the
  server's defaults): a commit that returned is durable, and every
  read-modify-write in the repositories is one statement or runs under the
  process's writer lock with unique constraints as the cross-process guard.

A node claims its database (:func:`claim_database`) with a session-level
advisory lock held on a connection of its own, outside the pool: on SQLite the
node's data-directory lock covers its database file, but a PostgreSQL database
lives elsewhere, and two nodes started on one URL would each act on the other's
rows (a relay's mailboxes, a user's ratchet states). Advisory locks are scoped
to one database, so one fixed key serves every database; the server drops the
lock when the holding session ends, so a crashed node leaves nothing stale.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ._engine import BUSY_TIMEOUT_S
from ._errors import DatabaseInUseError, InvalidArgumentError, StorageUnavailableError

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import URL, Engine

__all__ = ("claim_database", "create_postgres_engine", "is_postgres_target", "postgres_url")

_SCHEMES: Final = ("postgresql://", "postgres://", "postgresql+psycopg://")
_TIMEOUT_MS: Final = int(BUSY_TIMEOUT_S * 1000)
# The advisory-lock key of a node's claim: the first 8 bytes of b"dchatnod" as a signed int64.
_CLAIM_KEY: Final = int.from_bytes(b"dchatnod", "big", signed=True)


def is_postgres_target(target: str) -> bool:
    """Whether ``target`` is a PostgreSQL URL rather than a SQLite path."""
    return target.startswith(_SCHEMES)


def postgres_url(target: str) -> URL:
    """Parse a PostgreSQL URL and pin the psycopg 3 driver.

    Raises:
        InvalidArgumentError: ``target`` is not a parsable URL.
    """
    if target.startswith("postgres://"):
        target = "postgresql://" + target.removeprefix("postgres://")
    try:
        url = make_url(target)
    except ArgumentError as exc:
        raise InvalidArgumentError(f"not a PostgreSQL URL: {exc}") from None
    return url.set(drivername="postgresql+psycopg")


def create_postgres_engine(url: URL) -> Engine:
    """Create an engine for the PostgreSQL database at ``url``; no connection yet."""
    options = f"-c statement_timeout={_TIMEOUT_MS} -c lock_timeout={_TIMEOUT_MS}"
    return create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_timeout=BUSY_TIMEOUT_S,
        pool_recycle=1800,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": 10,
            "application_name": "dchat",
            "options": options,
        },
    )


def claim_database(url: URL) -> psycopg.Connection[tuple[object, ...]]:
    """Take the node claim on the database at ``url``; close the returned connection to drop it.

    Raises:
        DatabaseInUseError: Another session holds the claim.
        StorageUnavailableError: The server cannot be reached.
    """
    import psycopg  # here: a node on SQLite never loads the driver (see ``_engine``)

    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    where = url.render_as_string(hide_password=True)
    try:
        conn = psycopg.connect(plain, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StorageUnavailableError(f"cannot reach {where}: {exc}") from exc
    try:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_CLAIM_KEY,)).fetchone()
    except psycopg.Error as exc:
        conn.close()
        raise StorageUnavailableError(f"cannot claim {where}: {exc}") from exc
    if row is None or not row[0]:
        conn.close()
        raise DatabaseInUseError(f"another node is using the database {where}")
    return conn


def release_claim(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Drop the claim :func:`claim_database` took, then close its connection.

    The unlock is explicit: closing alone leaves the lock to the server
    process's exit, which may come after the next node has already asked.
    """
    import psycopg

    with contextlib.suppress(psycopg.Error):  # the server went away: so did the lock
        conn.execute("SELECT pg_advisory_unlock(%s)", (_CLAIM_KEY,))
    conn.close()
