"""Opening a database: the file, the engine, migrations and the repositories."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from ._access import Access
from ._engine import create_sqlite_engine, translate_errors
from ._errors import StorageUnavailableError
from ._local import ContactRepo, IdentityRepo
from ._mailbox import MailboxRepo
from ._messages import MessageRepo, OutboxRepo
from ._migrate import upgrade

if TYPE_CHECKING:
    import os
    from types import TracebackType

__all__ = ("Database", "open_database")


def open_database(path: str | os.PathLike[str]) -> Database:
    """Open (creating if missing) the database at ``path`` and migrate it to head.

    Missing parent directories are created. Migrations run in one transaction,
    so a failure leaves the file at its previous revision.

    Args:
        path: The SQLite file.

    Returns:
        An open :class:`Database`; close it with :meth:`Database.close` or ``with``.

    Raises:
        StorageUnavailableError: The file cannot be created or opened, is not a
            dchat database (or not a database at all), is corrupt, or was
            written by a newer release.
    """
    resolved = Path(path).resolve()
    try:
        resolved.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageUnavailableError(f"cannot create {resolved.parent}: {exc}") from exc
    database = Database(resolved)
    try:
        with database._access.write("migrate") as conn:
            upgrade(conn)
    except BaseException:
        database.close()
        raise
    return database


class Database:
    """An open dchat database: the repositories over one SQLite file.

    Every method is synchronous, blocking and thread-safe; from trio call them
    via ``trio.to_thread.run_sync``. Writes are serialized, reads run
    concurrently on a consistent snapshot. Obtain one with :func:`open_database`.

    Attributes:
        path: The absolute path of the database file.
        identity: The local identity.
        contacts: The address book.
        messages: Delivered and sent messages.
        outbox: Envelopes awaiting delivery to relays.
        mailboxes: Envelopes stored for others (relay role).
    """

    path: Path
    identity: IdentityRepo
    contacts: ContactRepo
    messages: MessageRepo
    outbox: OutboxRepo
    mailboxes: MailboxRepo

    def __init__(self, path: Path) -> None:
        """Wrap the file at ``path``; use :func:`open_database`, which also migrates."""
        self.path = path
        self._access = Access(create_sqlite_engine(path))
        self.identity = IdentityRepo(self._access)
        self.contacts = ContactRepo(self._access)
        self.messages = MessageRepo(self._access)
        self.outbox = OutboxRepo(self._access)
        self.mailboxes = MailboxRepo(self._access)

    def close(self) -> None:
        """Wait for calls in flight, then close every connection. Idempotent."""
        with translate_errors("close"):
            self._access.close()

    def integrity_check(self) -> str:
        """Run ``PRAGMA integrity_check``; return its report (``"ok"`` if sound)."""
        with self._access.read("integrity check") as conn:
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
        return f"<Database {str(self.path)!r}>"
