"""Encrypted, deduplicated backups of a node's data directory, in the spirit of restic.

::

    from dchat_storage.backup import LocalDirectoryDestination, Repository

    dest = LocalDirectoryDestination("/mnt/usb/dchat-backup")
    repo = Repository.init(dest, passphrase)            # once
    repo = Repository.open(dest, passphrase)
    repo.create(data_dir)                               # safe while the node runs
    repo.verify().ok                                    # reads and authenticates every blob
    repo.restore("latest", empty_dir)
    repo.prune(keep_last=7)

Files are cut into content-defined chunks, each stored once (keyed BLAKE2b-256
id), zstd-compressed and sealed with ChaCha20-Poly1305 under keys derived from a
random master key that a passphrase wraps with Argon2id. See the package README.
"""

from __future__ import annotations

from ._chunker import ChunkerParams as ChunkerParams
from ._destination import BackupDestination as BackupDestination
from ._destination import LocalDirectoryDestination as LocalDirectoryDestination
from ._errors import BackupAuthenticationError as BackupAuthenticationError
from ._errors import BackupError as BackupError
from ._errors import BackupIntegrityError as BackupIntegrityError
from ._errors import BackupIOError as BackupIOError
from ._errors import BackupUsageError as BackupUsageError
from ._errors import SnapshotNotFoundError as SnapshotNotFoundError
from ._report import CreateResult as CreateResult
from ._report import Problem as Problem
from ._report import Progress as Progress
from ._report import PruneResult as PruneResult
from ._report import Snapshot as Snapshot
from ._report import VerifyReport as VerifyReport
from ._repository import Repository as Repository
from ._status import BACKUP_STATUS_FILE as BACKUP_STATUS_FILE
from ._status import BackupStatus as BackupStatus
from ._status import read_backup_status as read_backup_status
from ._status import write_backup_status as write_backup_status

__all__ = (
    "BACKUP_STATUS_FILE",
    "BackupAuthenticationError",
    "BackupDestination",
    "BackupError",
    "BackupIOError",
    "BackupIntegrityError",
    "BackupStatus",
    "BackupUsageError",
    "ChunkerParams",
    "CreateResult",
    "LocalDirectoryDestination",
    "Problem",
    "Progress",
    "PruneResult",
    "Repository",
    "Snapshot",
    "SnapshotNotFoundError",
    "VerifyReport",
    "read_backup_status",
    "write_backup_status",
)
