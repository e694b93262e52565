"""Opening a database: the backend, the engine, migrations, unlocking and the repositories."""

from __future__ import annotations

import os
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import text

from ._access import Access
from ._attachments import AttachmentRepo
from ._chain import ChainRepo
from ._conversations import ConversationRepo
from ._engine import BUSY_TIMEOUT_S, create_sqlite_engine, translate_errors
from ._errors import StorageUnavailableError
from ._event_log import EventLog
from ._event_tail import EventTail
from ._keyring import unlock
from ._lifecycle import Lifecycle
from ._local import ContactRepo, IdentityRepo
from ._mailbox import MailboxRepo
from ._messages import MessageRepo, OutboxRepo
from ._postgres import (
    claim_database,
    create_postgres_engine,
    is_postgres_target,
    postgres_url,
    release_claim,
)
from ._prekeys import PrekeyRepo
from ._receipts import ReceiptRepo
from ._search import SearchRepo
from ._settings import DeviceRepo, SettingsRepo
from ._tokens import TokenRepo
from ._topics import TopicRepo

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

    import psycopg
    from sqlalchemy import Connection, Engine

    from dchat_crypto import KdfParams

    from ._sealing import StorageKey

__all__ = ("Database", "open_database")


def open_database(
    target: str | os.PathLike[str],
    *,
    key: StorageKey | None = None,
    passphrase: str | bytes | None = None,
    kdf_params: KdfParams | None = None,
) -> Database:
    """Open (creating if missing) a database, migrate it to head and unlock it.

    Args:
        target: A SQLite file path (created 0600; missing parent directories 0700),
            or a PostgreSQL URL (``postgresql+psycopg://user@host/db``; also
            ``postgresql://`` and ``postgres://``).
        key: Encrypt at rest under this storage key.
        passphrase: Encrypt at rest under a storage key wrapped by this
            passphrase (Argon2id) and kept in the database. A new or clear
            database gets a fresh key; a clear one with rows is sealed now.
        kdf_params: Argon2id cost for wrapping a new key (default: dchat_crypto's).

    Returns:
        An open :class:`Database`; close it with :meth:`Database.close` or ``with``.

    Raises:
        StorageUnavailableError: The database cannot be reached or created, is
            not a dchat database (or not a database at all), or was written by
            a newer release. :class:`StorageCorruptError` if it is damaged.
        LockedError: It is encrypted at rest and no key or passphrase, or the
            wrong one, was given.
    """
    database = Database(*_engine_for(target))
    try:
        with database._access.write("migrate") as conn:
            _migrate(conn)
        unlock(database._access, key=key, passphrase=passphrase, params=kdf_params)
    except BaseException:
        database.close()
        raise
    return database


HEAD_REVISION: Final = "0011"
"""The newest packaged migration (``test_migrations`` holds it to Alembic's head)."""

_VERSION_TABLE: Final = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
    "postgresql": "SELECT to_regclass('alembic_version') IS NOT NULL",
}


def _migrate(conn: Connection) -> None:
    """Bring the schema at ``conn`` to :data:`HEAD_REVISION`.

    A database already there (every start but the first after an upgrade) is
    recognised by one read, without importing Alembic: loading it and parsing
    the migration scripts was about a fifth of a node process's start-up.
    """
    exists = conn.execute(text(_VERSION_TABLE[conn.dialect.name])).scalar()
    if exists:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if versions == [HEAD_REVISION]:
            return
    from ._migrate import upgrade  # Alembic only when there is work

    upgrade(conn)


def _engine_for(target: str | os.PathLike[str]) -> tuple[Engine, Path | None, str]:
    if isinstance(target, str) and is_postgres_target(target):
        url = postgres_url(target)
        return create_postgres_engine(url), None, url.render_as_string(hide_password=True)
    resolved = Path(os.fspath(target)).resolve()
    try:
        resolved.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created here 0600 whatever the umask (SQLite gives its -wal and -shm
        # files the database file's mode); an existing file keeps its mode.
        os.close(os.open(resolved, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StorageUnavailableError(f"cannot create {resolved}: {exc}") from exc
    return create_sqlite_engine(resolved), resolved, f"sqlite:///{resolved}"


class Database:
    """An open dchat database: the repositories over one SQLite file or PostgreSQL database.

    Every method is synchronous, blocking and thread-safe; from trio call them
    via ``trio.to_thread.run_sync``. Writes are serialized, reads run
    concurrently on a consistent snapshot. Obtain one with :func:`open_database`.

    Attributes:
        path: The SQLite file (absolute), or None on PostgreSQL.
        url: Where the database is (PostgreSQL password hidden).
        identity: The local identity.
        contacts: The address book.
        conversations: Per-conversation retention and disappearing timers.
        messages: Delivered and sent messages.
        search: The messages' search index (blind word tokens).
        outbox: Envelopes awaiting delivery to relays.
        events: The event log clients follow (messages stored, requests, ...).
        devices: Devices of identities.
        settings: Private key/value settings.
        attachments: Uploaded attachments (validated, deduplicated, streamed).
        mailboxes: Envelopes stored for others (relay role).
        prekeys: Prekey bundles handed out for others (relay role).
        receipts: Delivery receipts given to this relay and their sealed batches (relay role).
        topics: Broadcast channel posts held for their readers (relay role).
        tokens: Paid blind tokens: issuer keys, used payments, spent tokens (relay role).
        chain: Chain blocks and state.
        lifecycle: Retention, disappearing messages, TTLs and garbage collection.
    """

    path: Path | None
    url: str

    def __init__(self, engine: Engine, path: Path | None, url: str) -> None:
        """Wrap ``engine``; use :func:`open_database`, which also migrates and unlocks."""
        self.path = path
        self.url = url
        self._access = Access(engine)
        self.identity = IdentityRepo(self._access)
        self.contacts = ContactRepo(self._access)
        self.conversations = ConversationRepo(self._access)
        tail = EventTail(self._access)  # the newest committed events, for followers
        self.messages = MessageRepo(self._access, tail)
        self.search = SearchRepo(self._access)
        self.outbox = OutboxRepo(self._access)
        self.events = EventLog(self._access, tail)
        self.devices = DeviceRepo(self._access)
        self.settings = SettingsRepo(self._access)
        self.attachments = AttachmentRepo(self._access)
        self.mailboxes = MailboxRepo(self._access)
        self.prekeys = PrekeyRepo(self._access)
        self.receipts = ReceiptRepo(self._access)
        self.topics = TopicRepo(self._access)
        self.tokens = TokenRepo(self._access)
        self.chain = ChainRepo(self._access)
        self.lifecycle = Lifecycle(self._access, tail)
        self._engine = engine
        self._claim: psycopg.Connection[tuple[object, ...]] | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group repository calls made by this thread into one atomic commit.

        Every write inside the block joins one ``BEGIN IMMEDIATE`` transaction
        (each in a savepoint of its own) and every read sees its uncommitted
        rows. The whole is committed, and fsynced, when the block exits
        normally, and rolled back if it raises.

        Example::

            with db.transaction():
                db.messages.add(...)
                db.outbox.enqueue(...)
        """
        with self._access.write("transaction", group=True):
            yield

    def on_rollback(self, undo: Callable[[], object]) -> None:
        """Call ``undo`` if this thread's innermost open transaction level is rolled back.

        For state kept beside the database, such as a cache of decoded rows:
        ``undo`` forgets what the level put there, so the cache never holds
        what the database does not. It runs once, under the writer lock, when
        the level, an enclosing one or the commit fails; never after a
        successful commit. Outside a transaction it is dropped.
        """
        self._access.on_rollback(undo)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._access.dialect

    @property
    def encrypted(self) -> bool:
        """Whether private fields are sealed at rest."""
        return self._access.sealer.encrypted

    def claim_exclusive(self) -> None:
        """Make this the only handle that claims the database, until :meth:`close`.

        On PostgreSQL a session-level advisory lock held on a connection of its
        own (``_postgres.claim_database``): a second node started on the same
        URL is refused instead of acting on the first one's rows. On SQLite
        this does nothing: the file lives in the node's data directory, whose
        lock already keeps a second node out. Claiming twice is harmless.

        Raises:
            DatabaseInUseError: Another process holds the claim.
            StorageUnavailableError: The server cannot be reached.
        """
        if self._access.dialect == "postgresql" and self._claim is None:
            self._claim = claim_database(self._engine.url)

    def close(self) -> None:
        """Wait for calls in flight, then close every connection. Idempotent."""
        with translate_errors("close"):
            self._access.close()
            if self._claim is not None:
                release_claim(self._claim)
                self._claim = None

    def size_bytes(self) -> int:
        """The space the database takes: its files on SQLite, the server's count on PostgreSQL.

        SQLite: the database file and its ``-wal`` and ``-shm`` (which come and
        go). PostgreSQL: ``pg_database_size`` of this database (tables, indexes,
        TOAST; not the server's WAL).
        """
        if self.path is None:
            with self._access.read("database size") as conn:
                query = text("SELECT pg_database_size(current_database())")
                return int(conn.execute(query).scalar_one())
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def truncate_log(self) -> bool:
        """Fold SQLite's write-ahead log into the file and truncate it (PostgreSQL: no-op).

        ``secure_delete`` zeroes deleted rows in the pages a delete writes,
        but the log still holds the older images of those pages until it is
        overwritten: after deleting what must not stay on disk (an expired
        disappearing message), this empties it. It waits at most 100 ms for
        readers on an older snapshot, since it holds the writer lock meanwhile
        and every write of the node waits behind it; the caller retries.

        Returns:
            True if the log is empty now; False if a reader kept part of it
            (call again later).
        """
        if self._access.dialect != "sqlite":
            return True
        with self._access.raw("truncate the write-ahead log") as dbapi_connection:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA busy_timeout=100")
                busy, _, _ = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                cursor.close()
        return int(busy) == 0

    def integrity_check(self) -> str:
        """Check the database; return ``"ok"`` when sound, else the problems found.

        SQLite runs ``PRAGMA integrity_check`` (every page, index and
        constraint). PostgreSQL checks its pages itself (page checksums, WAL),
        so there this only proves the server answers and the schema is there.
        """
        with self._access.read("integrity check") as conn:
            if self._access.dialect != "sqlite":
                conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
                return "ok"
            lines = conn.execute(text("PRAGMA integrity_check")).scalars().all()
        return "\n".join(str(line) for line in lines)

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Database {self.url!r}>"
