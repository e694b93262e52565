"""Restoring a snapshot into an empty directory.

Each file is written to a temporary name, its whole-file BLAKE2b-256 compared
with the manifest, fsynced, and only then renamed into place, so a damaged
backup never leaves a plausible-looking file behind. Directory modes and times
are applied last, deepest first, so a read-only directory does not stop its own
restore. A failure leaves a partial tree, never a wrong file; the target was
empty, so removing it is always safe.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from typing import TYPE_CHECKING

from ._errors import BackupIntegrityError, BackupIOError, BackupUsageError

if TYPE_CHECKING:
    from pathlib import Path

    from ._manifest import Entry, Manifest
    from ._report import Progress
    from ._store import BlobStore

__all__ = ("check_empty_target", "restore_manifest")


def check_empty_target(target: Path) -> None:
    """Refuse anything but a missing path or an empty directory.

    Raises:
        BackupUsageError: ``target`` is a file or a non-empty directory.
    """
    if not target.exists():
        return
    if not target.is_dir():
        raise BackupUsageError(f"restore target {target} is not a directory")
    if any(target.iterdir()):
        raise BackupUsageError(f"restore target {target} is not empty")


def restore_manifest(
    store: BlobStore, manifest: Manifest, target: Path, *, progress: Progress | None = None
) -> None:
    """Write every entry of ``manifest`` under ``target``, checked empty by the caller."""
    total = sum(entry.size for entry in manifest.entries)
    done = 0
    try:
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        for entry in manifest.entries:
            path = target / entry.path if entry.path else target
            if entry.kind == "dir":
                path.mkdir(mode=0o700, exist_ok=True)
                continue
            _restore_file(store, entry, path)
            done += entry.size
            if progress is not None:
                progress(done, total)
        for entry in sorted(manifest.entries, key=lambda e: -e.path.count("/")):
            if entry.kind == "dir":
                path = target / entry.path if entry.path else target
                os.chmod(path, entry.mode)
                os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns))
    except OSError as exc:
        raise BackupIOError(f"cannot restore into {target}: {exc.strerror or exc}") from exc


def _restore_file(store: BlobStore, entry: Entry, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    digest = hashlib.blake2b(digest_size=32)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            for ref in entry.chunks:
                data = store.chunk(ref.id)
                if len(data) != ref.size:
                    raise BackupIntegrityError(f"chunk of {entry.path} has the wrong size")
                digest.update(data)
                handle.write(data)
            if digest.digest() != entry.digest:
                raise BackupIntegrityError(f"{entry.path} does not match its recorded hash")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, entry.mode)
        os.utime(tmp, ns=(entry.mtime_ns, entry.mtime_ns))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
