"""Errors raised by :mod:`dchat_storage`.

Every error derives from :class:`DchatStorageError` and carries one *kind* from
:mod:`dchat_core`, saying whose fault it is::

    DchatError
    └── DchatStorageError                     root of this package's errors
        ├── DuplicateError(CallerError, ValueError)        a unique key is already stored
        ├── ExposedDirectoryError(CallerError)             a data directory other users can reach
        ├── NotFoundError(CallerError, LookupError)        the record to change does not exist
        ├── InvalidArgumentError(CallerError, ValueError)  an argument is out of its domain
        │   └── BlobOffsetError                            a blob piece not at the bytes held
        ├── DatabaseClosedError(CallerError)               the Database was used after close()
        ├── DatabaseInUseError(CallerError)                another process claimed the database
        ├── LockedError(CallerError)                       wrong or missing at-rest key/passphrase
        ├── QuotaExceededError(CallerError)                a per-identity quota would be exceeded
        ├── CursorExpiredError(CallerError, LookupError)   events after a cursor were pruned
        ├── TransactionDoomedError(CallerError)            a failed write was caught and the
        │                                                  transaction went on; none of it kept
        ├── UploadRejectedError(CallerError, ValueError)   an upload is refused; nothing stored
        │   ├── ContentTypeMismatchError                   content is not what was declared
        │   ├── UploadTooLargeError                        over the per-kind size limit
        │   ├── DecompressionBombError                     an image decodes to too many pixels
        │   ├── MalformedContentError                      declared type right, content broken
        │   └── BlobHashMismatchError                      a relay blob does not hash to its id
        └── StorageUnavailableError(TransportError)        the database cannot be opened or used:
            │                                              I/O error, foreign file, server down,
            │                                              lock timeout, unknown schema revision
            ├── StorageFullError                           the disk (or size limit) is full
            └── StorageCorruptError                        corrupt pages or a stored record that
                                                           fails authentication

SQLAlchemy, ``sqlite3``, psycopg and Pillow exceptions never leave the public API; they are
translated at the boundary (see ``_engine.translate_errors``) and chained as
``__cause__`` so the original stays available for debugging.
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, TransportError

__all__ = (
    "BlobHashMismatchError",
    "BlobOffsetError",
    "ContentTypeMismatchError",
    "CursorExpiredError",
    "DatabaseClosedError",
    "DatabaseInUseError",
    "DchatStorageError",
    "DecompressionBombError",
    "DuplicateError",
    "ExposedDirectoryError",
    "InvalidArgumentError",
    "LockedError",
    "MalformedContentError",
    "NotFoundError",
    "QuotaExceededError",
    "StorageCorruptError",
    "StorageFullError",
    "StorageUnavailableError",
    "TransactionDoomedError",
    "UploadRejectedError",
    "UploadTooLargeError",
)


class DchatStorageError(DchatError):
    """Root of the errors raised by :mod:`dchat_storage`."""


class DuplicateError(DchatStorageError, CallerError, ValueError):
    """A record with the same unique key (id, name, ...) is already stored."""


class NotFoundError(DchatStorageError, CallerError, LookupError):
    """The record an update or removal refers to is not stored."""


class InvalidArgumentError(DchatStorageError, CallerError, ValueError):
    """An argument is outside its allowed domain (e.g. a negative limit)."""


class DatabaseClosedError(DchatStorageError, CallerError):
    """The :class:`~dchat_storage.Database` was used after :meth:`close`."""


class StorageUnavailableError(DchatStorageError, TransportError):
    """The database cannot be opened or used.

    Raised for I/O errors, a file that is not a database or is corrupt, a lock
    that stayed busy past the timeout, or a schema revision this version of
    dchat-storage does not know (a database written by a newer release).
    """


class StorageFullError(StorageUnavailableError):
    """A write failed because the disk (or the configured size limit) is full.

    The failed transaction was rolled back; everything committed before it is
    intact. Free space and retry.
    """


class StorageCorruptError(StorageUnavailableError):
    """The database is damaged: a corrupt page, or a stored record whose
    authentication tag does not verify (flipped bits or tampering).

    Nothing is written to repair it: the file is left as found, for a backup
    restore or forensics.
    """


class LockedError(DchatStorageError, CallerError):
    """The database is encrypted at rest and the key or passphrase is missing or wrong.

    One opaque error for every unlock failure: it never says which check failed.
    """


class QuotaExceededError(DchatStorageError, CallerError):
    """Storing this would take an identity over its storage quota; nothing was stored."""


class CursorExpiredError(DchatStorageError, CallerError, LookupError):
    """Events after this cursor were pruned by retention: they cannot be replayed.

    The client re-lists what it shows (the messages) and follows the log again
    from its current end.
    """

    code = "cursor_expired"


class TransactionDoomedError(DchatStorageError, CallerError):
    """A write inside a transaction failed, its caller caught the error and went on.

    Most writes run without a savepoint of their own, so a failure cannot be
    undone alone: the enclosing transaction (or savepoint) refuses further
    reads and writes, and is rolled back instead of committed; nothing of it
    is kept. This is a bug in the caller, which should let the error end the
    transaction (or open a nested one around what it expects may fail).
    """


class UploadRejectedError(DchatStorageError, CallerError, ValueError):
    """An upload was refused; nothing of it was stored."""


class ContentTypeMismatchError(UploadRejectedError):
    """The content bytes are not of the declared type (or of a type the kind allows)."""


class UploadTooLargeError(UploadRejectedError):
    """The upload is larger than the limit for its kind."""


class DecompressionBombError(UploadRejectedError):
    """An image would decode to more pixels than allowed (a decompression bomb)."""


class MalformedContentError(UploadRejectedError):
    """The content claims the right type but cannot be decoded (truncated, damaged)."""


class ExposedDirectoryError(DchatStorageError, CallerError):
    """A data directory is not private to the running user (see ``check_private_directory``)."""


class DatabaseInUseError(DchatStorageError, CallerError):
    """Another process holds the database's claim (:meth:`Database.claim_exclusive`)."""

    code = "database_in_use"


class BlobHashMismatchError(UploadRejectedError):
    """A complete blob's bytes do not hash to its id; the upload was deleted."""


class BlobOffsetError(InvalidArgumentError):
    """A blob piece was sent at an offset other than the bytes held (``held``).

    The uploader asks again where to resume (nothing was written).
    """

    def __init__(self, held: int) -> None:
        super().__init__(f"the relay holds {held} bytes of this blob")
        self.held = held
