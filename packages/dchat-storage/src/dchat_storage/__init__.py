"""dchat-storage: SQLAlchemy schema, repositories, migrations and at-rest encryption.

Open a database with :func:`open_database`: a SQLite file (the embedded
default) or a PostgreSQL URL (the scale-out backend). It is migrated to the
newest schema on open and, given a passphrase or :class:`StorageKey`, its
private fields are sealed at rest. Every call is synchronous and thread-safe;
from trio, run them in a worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

from ._attachments import AttachmentRepo as AttachmentRepo
from ._chain import ChainRepo as ChainRepo
from ._chain_log import ChainBlockLog as ChainBlockLog
from ._conversations import ConversationRepo as ConversationRepo
from ._database import Database as Database
from ._database import open_database as open_database
from ._engine_store import EngineStore as EngineStore
from ._errors import ContentTypeMismatchError as ContentTypeMismatchError
from ._errors import DatabaseClosedError as DatabaseClosedError
from ._errors import DchatStorageError as DchatStorageError
from ._errors import DecompressionBombError as DecompressionBombError
from ._errors import DuplicateError as DuplicateError
from ._errors import InvalidArgumentError as InvalidArgumentError
from ._errors import LockedError as LockedError
from ._errors import MalformedContentError as MalformedContentError
from ._errors import NotFoundError as NotFoundError
from ._errors import QuotaExceededError as QuotaExceededError
from ._errors import StorageCorruptError as StorageCorruptError
from ._errors import StorageFullError as StorageFullError
from ._errors import StorageUnavailableError as StorageUnavailableError
from ._errors import UploadRejectedError as UploadRejectedError
from ._errors import UploadTooLargeError as UploadTooLargeError
from ._lifecycle import Lifecycle as Lifecycle
from ._lifecycle import LifecyclePolicy as LifecyclePolicy
from ._lifecycle import SweepReport as SweepReport
from ._local import ContactRepo as ContactRepo
from ._local import IdentityRepo as IdentityRepo
from ._mailbox import MailboxRepo as MailboxRepo
from ._messages import MessageRepo as MessageRepo
from ._messages import OutboxRepo as OutboxRepo
from ._prekeys import PrekeyRepo as PrekeyRepo
from ._records import AttachmentRecord as AttachmentRecord
from ._records import BlockRecord as BlockRecord
from ._records import ContactRecord as ContactRecord
from ._records import ConversationRecord as ConversationRecord
from ._records import DeviceRecord as DeviceRecord
from ._records import IdentityRecord as IdentityRecord
from ._records import MailboxEntry as MailboxEntry
from ._records import MessageRecord as MessageRecord
from ._records import OutboxItem as OutboxItem
from ._sealing import StorageKey as StorageKey
from ._settings import DeviceRepo as DeviceRepo
from ._settings import SettingsRepo as SettingsRepo
from ._sniff import sniff as detect_media_type
from ._sweeps import SWEEP_INTERVAL as SWEEP_INTERVAL
from ._sweeps import SweepSchedule as SweepSchedule
from ._uploads import KINDS as ATTACHMENT_KINDS
from ._uploads import UploadLimits as UploadLimits

__all__ = (
    "ATTACHMENT_KINDS",
    "AttachmentRecord",
    "AttachmentRepo",
    "BlockRecord",
    "ChainBlockLog",
    "ChainRepo",
    "ContactRecord",
    "ContactRepo",
    "ContentTypeMismatchError",
    "ConversationRecord",
    "ConversationRepo",
    "Database",
    "DatabaseClosedError",
    "DchatStorageError",
    "DecompressionBombError",
    "DeviceRecord",
    "DeviceRepo",
    "DuplicateError",
    "EngineStore",
    "IdentityRecord",
    "IdentityRepo",
    "InvalidArgumentError",
    "Lifecycle",
    "LifecyclePolicy",
    "LockedError",
    "MailboxEntry",
    "MailboxRepo",
    "MalformedContentError",
    "MessageRecord",
    "MessageRepo",
    "NotFoundError",
    "OutboxItem",
    "OutboxRepo",
    "PrekeyRepo",
    "QuotaExceededError",
    "SWEEP_INTERVAL",
    "SettingsRepo",
    "StorageCorruptError",
    "StorageFullError",
    "StorageKey",
    "StorageUnavailableError",
    "SweepReport",
    "SweepSchedule",
    "UploadLimits",
    "UploadRejectedError",
    "UploadTooLargeError",
    "detect_media_type",
    "open_database",
)
