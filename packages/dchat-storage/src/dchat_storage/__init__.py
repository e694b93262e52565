"""dchat-storage: SQLAlchemy schema, repositories and migrations (SQLite for now).

Open a database with :func:`open_database`; it is migrated to the newest schema
on open. Every call is synchronous and thread-safe; from trio, run them in a
worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

from ._database import Database as Database
from ._database import open_database as open_database
from ._errors import DatabaseClosedError as DatabaseClosedError
from ._errors import DchatStorageError as DchatStorageError
from ._errors import DuplicateError as DuplicateError
from ._errors import InvalidArgumentError as InvalidArgumentError
from ._errors import NotFoundError as NotFoundError
from ._errors import StorageUnavailableError as StorageUnavailableError
from ._local import ContactRepo as ContactRepo
from ._local import IdentityRepo as IdentityRepo
from ._mailbox import MailboxRepo as MailboxRepo
from ._messages import MessageRepo as MessageRepo
from ._messages import OutboxRepo as OutboxRepo
from ._records import ContactRecord as ContactRecord
from ._records import IdentityRecord as IdentityRecord
from ._records import MailboxEntry as MailboxEntry
from ._records import MessageRecord as MessageRecord
from ._records import OutboxItem as OutboxItem

__all__ = (
    "ContactRecord",
    "ContactRepo",
    "Database",
    "DatabaseClosedError",
    "DchatStorageError",
    "DuplicateError",
    "IdentityRecord",
    "IdentityRepo",
    "InvalidArgumentError",
    "MailboxEntry",
    "MailboxRepo",
    "MessageRecord",
    "MessageRepo",
    "NotFoundError",
    "OutboxItem",
    "OutboxRepo",
    "StorageUnavailableError",
    "open_database",
)
