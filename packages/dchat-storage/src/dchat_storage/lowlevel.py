"""The low-level API of dchat-storage: the repositories and records beneath :class:`Database`.

:mod:`dchat_storage` exports what a user of the storage layer needs: opening a
database (:func:`open_database`, :class:`Database`), the stores the engines
use (``EngineStore``, ``ChainBlockLog``), lifecycle rules, upload validation
and the errors a caller handles. This module holds the rest, for code that
types against the pieces a :class:`Database` is made of: the repositories
(``db.mailboxes`` is a :class:`MailboxRepo`, ``db.events`` an :class:`EventLog`,
and so on) and their records,
:class:`StorageKey` (the raw at-rest key behind a passphrase), the specific
upload-rejection errors beneath :class:`dchat_storage.UploadRejectedError`, and
:class:`TransactionDoomedError` (a caller caught a failed write and went on) and
:class:`DatabaseInUseError` (another process claimed the database), and
:func:`is_postgres_target` (whether an :func:`open_database` target names PostgreSQL),
and :func:`write_private` (a file replaced atomically and durably, mode 0600) with
its reader :func:`read_private` (bounded in size), and a relay's blob store
(:class:`RelayBlobStore`: sealed attachment files beside the mailboxes), and
the upload type rules (:func:`check_type`, :func:`normalize_type`), and
:data:`SENT_HOLD` (how long a sent disappearing message waits for a read receipt).
"""

from __future__ import annotations

from ._attachments import AttachmentRepo as AttachmentRepo
from ._chain import ChainRepo as ChainRepo
from ._conversations import ConversationRepo as ConversationRepo
from ._errors import BlobHashMismatchError as BlobHashMismatchError
from ._errors import BlobOffsetError as BlobOffsetError
from ._errors import ContentTypeMismatchError as ContentTypeMismatchError
from ._errors import DatabaseInUseError as DatabaseInUseError
from ._errors import DecompressionBombError as DecompressionBombError
from ._errors import ExposedDirectoryError as ExposedDirectoryError
from ._errors import MalformedContentError as MalformedContentError
from ._errors import TransactionDoomedError as TransactionDoomedError
from ._errors import UploadTooLargeError as UploadTooLargeError
from ._event_log import EventLog as EventLog
from ._local import ContactRepo as ContactRepo
from ._local import IdentityRepo as IdentityRepo
from ._mailbox import MailboxRepo as MailboxRepo
from ._messages import SENT_HOLD as SENT_HOLD
from ._messages import MessageRepo as MessageRepo
from ._messages import OutboxRepo as OutboxRepo
from ._postgres import is_postgres_target as is_postgres_target
from ._prekeys import PrekeyRepo as PrekeyRepo
from ._private_dir import read_private as read_private
from ._private_dir import write_private as write_private
from ._receipts import ReceiptRepo as ReceiptRepo
from ._records import BlockRecord as BlockRecord
from ._records import ConversationRecord as ConversationRecord
from ._records import DeviceRecord as DeviceRecord
from ._relay_blobs import BlobLimits as BlobLimits
from ._relay_blobs import BlobState as BlobState
from ._relay_blobs import RelayBlobStore as RelayBlobStore
from ._relay_blobs import blob_hasher as blob_hasher
from ._sealing import StorageKey as StorageKey
from ._search import SearchRepo as SearchRepo
from ._settings import DeviceRepo as DeviceRepo
from ._settings import SettingsRepo as SettingsRepo
from ._terms import MAX_QUERY_CHARS as MAX_QUERY_CHARS
from ._terms import MAX_QUERY_TERMS as MAX_QUERY_TERMS
from ._terms import query_terms as query_terms
from ._terms import search_terms as search_terms
from ._topics import TopicRepo as TopicRepo
from ._uploads import check_type as check_type
from ._uploads import normalize_type as normalize_type

__all__ = (
    "AttachmentRepo",
    "BlobHashMismatchError",
    "BlobLimits",
    "BlobOffsetError",
    "BlobState",
    "BlockRecord",
    "ChainRepo",
    "ContactRepo",
    "ContentTypeMismatchError",
    "ConversationRecord",
    "ConversationRepo",
    "DatabaseInUseError",
    "DecompressionBombError",
    "DeviceRecord",
    "DeviceRepo",
    "EventLog",
    "ExposedDirectoryError",
    "IdentityRepo",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TERMS",
    "MailboxRepo",
    "MalformedContentError",
    "MessageRepo",
    "OutboxRepo",
    "PrekeyRepo",
    "ReceiptRepo",
    "RelayBlobStore",
    "SENT_HOLD",
    "SearchRepo",
    "SettingsRepo",
    "StorageKey",
    "TopicRepo",
    "TransactionDoomedError",
    "UploadTooLargeError",
    "blob_hasher",
    "check_type",
    "is_postgres_target",
    "normalize_type",
    "query_terms",
    "read_private",
    "search_terms",
    "write_private",
)
