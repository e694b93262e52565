"""Errors raised by :mod:`dchat_storage`.

Every error derives from :class:`DchatStorageError` and carries one *kind* from
:mod:`dchat_core`, saying whose fault it is::

    DchatError
    └── DchatStorageError                     root of this package's errors
        ├── DuplicateError(CallerError, ValueError)        a unique key is already stored
        ├── NotFoundError(CallerError, LookupError)        the record to change does not exist
        ├── InvalidArgumentError(CallerError, ValueError)  an argument is out of its domain
        ├── DatabaseClosedError(CallerError)               the Database was used after close()
        └── StorageUnavailableError(TransportError)        the file cannot be opened or used:
                                                           I/O error, corrupt or foreign file,
                                                           lock timeout, unknown schema revision

SQLAlchemy and ``sqlite3`` exceptions never leave the public API; they are
translated at the boundary (see ``_engine.translate_errors``) and chained as
``__cause__`` so the original stays available for debugging.
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, TransportError

__all__ = (
    "DatabaseClosedError",
    "DchatStorageError",
    "DuplicateError",
    "InvalidArgumentError",
    "NotFoundError",
    "StorageUnavailableError",
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
