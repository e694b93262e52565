"""The last verified backup, as a small record in the node's data directory.

Theory of operation. A running node cannot look into its backup repository:
the repository is sealed under a passphrase the node does not hold, and it
may live on another disk. What the node can report (as a metric, so an alert
fires when backups stop) is what the backup job last *proved*. So the job
that verifies a repository (``dchat-node backup verify --data-dir ...``, run
by the backup timer after each snapshot) writes a :class:`BackupStatus` into
the data directory once verification passed: when the newest snapshot was
taken, when it was verified and how many snapshots the repository holds.
Nothing else: no path, no passphrase, no snapshot id.

The file is replaced atomically and durably, created 0600 like everything
in a data directory (by :meth:`LocalDirectoryDestination.put`, whose side
file backups skip). :func:`read_backup_status` never raises on a missing or damaged
record: a reader (the metrics scrape) then simply has no figure to report,
which is what an alert on a missing figure is for.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ._destination import LocalDirectoryDestination

if TYPE_CHECKING:
    import os

__all__ = ("BACKUP_STATUS_FILE", "BackupStatus", "read_backup_status", "write_backup_status")

BACKUP_STATUS_FILE: Final = "backup-status.json"
"""The record's file name inside a node's data directory."""


@dataclass(frozen=True, slots=True)
class BackupStatus:
    """The outcome of the last successful verification of a node's backups.

    Attributes:
        snapshot_time: When the newest verified snapshot was taken (Unix time).
        verified_at: When the verification that passed ran (Unix time).
        snapshots: Snapshots in the repository at that time.
    """

    snapshot_time: float
    verified_at: float
    snapshots: int


def write_backup_status(data_dir: str | os.PathLike[str], status: BackupStatus) -> None:
    """Record ``status`` in ``data_dir`` (atomically, mode 0600).

    Raises:
        BackupIOError: The record cannot be written.
    """
    body = json.dumps(
        {
            "snapshot_time": status.snapshot_time,
            "verified_at": status.verified_at,
            "snapshots": status.snapshots,
        }
    ).encode()
    # The repository's atomic, durable, 0600 put, aimed at the data directory.
    LocalDirectoryDestination(data_dir).put(BACKUP_STATUS_FILE, body)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def read_backup_status(data_dir: str | os.PathLike[str]) -> BackupStatus | None:
    """The recorded status, or None when there is none or it is unreadable."""
    try:
        raw = (Path(data_dir) / BACKUP_STATUS_FILE).read_bytes()
    except OSError:
        return None
    if len(raw) > 4096:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    snapshot_time = _number(record.get("snapshot_time"))
    verified_at = _number(record.get("verified_at"))
    snapshots = record.get("snapshots")
    if snapshot_time is None or verified_at is None:
        return None
    if isinstance(snapshots, bool) or not isinstance(snapshots, int) or snapshots < 0:
        return None
    return BackupStatus(snapshot_time, verified_at, snapshots)
