"""dchat-storage: SQLAlchemy schema, repositories, migrations and at-rest encryption.

Open a database with :func:`open_database`: a SQLite file (the embedded
default) or a PostgreSQL URL (the scale-out backend). It is migrated to the
newest schema on open and, given a passphrase or :class:`StorageKey`, its
private fields are sealed at rest. Every call is synchronous and thread-safe;
from trio, run them in a worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

from ._async import AsyncStore as AsyncStore
from ._chain_log import ChainBlockLog as ChainBlockLog
from ._database import Database as Database
from ._database import open_database as open_database
from ._engine_store import EngineStore as EngineStore
from ._errors import CursorExpiredError as CursorExpiredError
from ._errors import DatabaseClosedError as DatabaseClosedError
from ._errors import DchatStorageError as DchatStorageError
from ._errors import DuplicateError as DuplicateError
from ._errors import InvalidArgumentError as InvalidArgumentError
from ._errors import LockedError as LockedError
from ._errors import NotFoundError as NotFoundError
from ._errors import QuotaExceededError as QuotaExceededError
from ._errors import StorageCorruptError as StorageCorruptError
from ._errors import StorageFullError as StorageFullError
from ._errors import StorageUnavailableError as StorageUnavailableError
from ._errors import UploadRejectedError as UploadRejectedError
from ._event_log import EventRecord as EventRecord
from ._lifecycle import Lifecycle as Lifecycle
from ._lifecycle import LifecyclePolicy as LifecyclePolicy
from ._lifecycle import SweepReport as SweepReport
from ._private_dir import check_private_directory as check_private_directory
from ._records import AttachmentRecord as AttachmentRecord
from ._records import ContactRecord as ContactRecord
from ._records import IdentityRecord as IdentityRecord
from ._records import MailboxEntry as MailboxEntry
from ._records import MessageRecord as MessageRecord
from ._records import OutboxItem as OutboxItem
from ._sniff import sniff as detect_media_type
from ._sweeps import SWEEP_INTERVAL as SWEEP_INTERVAL
from ._sweeps import SweepSchedule as SweepSchedule
from ._uploads import KINDS as ATTACHMENT_KINDS
from ._uploads import UploadLimits as UploadLimits

__all__ = (
    "ATTACHMENT_KINDS",
    "AsyncStore",
    "AttachmentRecord",
    "ChainBlockLog",
    "ContactRecord",
    "CursorExpiredError",
    "Database",
    "DatabaseClosedError",
    "DchatStorageError",
    "DuplicateError",
    "EngineStore",
    "EventRecord",
    "IdentityRecord",
    "InvalidArgumentError",
    "Lifecycle",
    "LifecyclePolicy",
    "LockedError",
    "MailboxEntry",
    "MessageRecord",
    "NotFoundError",
    "OutboxItem",
    "QuotaExceededError",
    "SWEEP_INTERVAL",
    "StorageCorruptError",
    "StorageFullError",
    "StorageUnavailableError",
    "SweepReport",
    "SweepSchedule",
    "UploadLimits",
    "UploadRejectedError",
    "check_private_directory",
    "detect_media_type",
    "open_database",
)
