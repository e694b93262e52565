"""Errors raised by :mod:`dchat_storage.backup`.

::

    DchatStorageError (dchat_storage)
    └── BackupError                                      root of the backup errors
        ├── BackupAuthenticationError(PeerError)         wrong passphrase or key file, or a
        │                                                tampered key blob: one opaque error
        ├── BackupIntegrityError(PeerError)              a blob the repository needs is
        │                                                missing, damaged or malformed
        ├── BackupUsageError(CallerError, ValueError)    bad argument: non-empty restore
        │                                                target, bad parameters, no repository
        ├── SnapshotNotFoundError(CallerError, LookupError)  no snapshot matches an id prefix
        └── BackupIOError(TransportError)                reading the source or using the
                                                         destination failed (disk full, ...)

``OSError`` and ``sqlite3`` errors are translated where they arise and chained as
``__cause__``. An authentication failure never says which check failed.
"""

from __future__ import annotations

from dchat_core import CallerError, PeerError, TransportError

from .._errors import DchatStorageError

__all__ = (
    "BackupAuthenticationError",
    "BackupError",
    "BackupIOError",
    "BackupIntegrityError",
    "BackupUsageError",
    "SnapshotNotFoundError",
)


class BackupError(DchatStorageError):
    """Root of the errors raised by :mod:`dchat_storage.backup`."""


class BackupAuthenticationError(BackupError, PeerError):
    """The repository cannot be unlocked; deliberately says nothing more.

    A wrong passphrase, a wrong key file and a tampered key blob all raise this
    same error with the same message.
    """

    def __init__(self) -> None:
        super().__init__("cannot unlock the backup repository: wrong passphrase or key")


class BackupIntegrityError(BackupError, PeerError):
    """A blob the operation needs is missing, fails authentication or is malformed."""


class BackupUsageError(BackupError, CallerError, ValueError):
    """An argument is unusable: a non-empty restore target, bad parameters, ..."""


class SnapshotNotFoundError(BackupError, CallerError, LookupError):
    """No snapshot has the given id (or id prefix), or the prefix is ambiguous."""


class BackupIOError(BackupError, TransportError):
    """Reading the source or writing/reading the destination failed."""
