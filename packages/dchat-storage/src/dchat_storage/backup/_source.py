"""Reading a node's data directory: what to back up, and consistent database copies.

Every regular file and directory under the data directory is backed up, except:

* SQLite's side files (``-wal``, ``-shm``, ``-journal``): the database is copied
  with the online backup API instead, which folds the WAL in;
* ``api.json``: the running node's URL and bearer token, rewritten at each start
  (a restored node must not advertise a dead process, and the token is a secret
  that has no business in a backup);
* lock, pid and temporary files (``*.lock``, ``*.pid``, ``*.tmp``), symlinks and
  special files, and the repository itself if it lives inside the directory.

A file is treated as a SQLite database when it starts with SQLite's 16-byte
header, whatever the schema; it is then copied with ``sqlite3.Connection.backup``
in one step, which reads one consistent snapshot (a WAL-mode reader never blocks
the node's writer). The raw file is never read while the node may write it.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import BackupIOError, BackupUsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("SourceItem", "is_sqlite", "scan", "sqlite_snapshot")

SQLITE_HEADER = b"SQLite format 3\x00"
SKIP_NAMES = frozenset({"api.json"})
SKIP_SUFFIXES = ("-wal", "-shm", "-journal", ".lock", ".pid", ".tmp")
_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class SourceItem:
    """A file or directory found under the data directory."""

    rel: str
    path: Path
    kind: str
    mode: int
    mtime_ns: int
    size: int


def scan(root: Path, *, exclude: frozenset[Path] = frozenset()) -> list[SourceItem]:
    """List what to back up under ``root``, parents before children, sorted by path.

    ``exclude`` holds resolved paths to leave out, with everything below them.

    Raises:
        BackupUsageError: ``root`` is not a directory.
        BackupIOError: A directory cannot be listed.
    """
    if not root.is_dir():
        raise BackupUsageError(f"{root} is not a directory")
    items = [_item(root, root, os.stat(root))]
    try:
        _walk(root, root, exclude, items)
    except OSError as exc:
        raise BackupIOError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    return sorted(items, key=lambda item: item.rel.split("/"))


def _walk(root: Path, folder: Path, exclude: frozenset[Path], out: list[SourceItem]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            path = Path(entry.path)
            if _skipped(entry.name) or (exclude and path.resolve() in exclude):
                continue
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                out.append(_item(root, path, info))
                _walk(root, path, exclude, out)
            elif stat.S_ISREG(info.st_mode):
                out.append(_item(root, path, info))


def _skipped(name: str) -> bool:
    return name in SKIP_NAMES or name.endswith(SKIP_SUFFIXES)


def _item(root: Path, path: Path, info: os.stat_result) -> SourceItem:
    return SourceItem(
        rel=path.relative_to(root).as_posix() if path != root else "",
        path=path,
        kind="dir" if stat.S_ISDIR(info.st_mode) else "file",
        mode=stat.S_IMODE(info.st_mode),
        mtime_ns=info.st_mtime_ns,
        size=0 if stat.S_ISDIR(info.st_mode) else info.st_size,
    )


def is_sqlite(path: Path) -> bool:
    """Whether ``path`` starts with the SQLite database header."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError as exc:
        raise BackupIOError(f"cannot read {path.name}: {exc.strerror}") from exc


@contextmanager
def sqlite_snapshot(path: Path, work_dir: Path) -> Iterator[Path]:
    """A consistent copy of the live SQLite database ``path``, deleted on exit.

    The copy is made in a private (0700) temporary directory under ``work_dir``,
    on the same file system and under the same protection as the original.

    Raises:
        BackupIOError: The database cannot be opened or copied.
    """
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".backup-", suffix=".tmp") as tmp:
        copy = Path(tmp) / "copy.sqlite3"
        try:
            _backup(path, copy)
        except sqlite3.Error as exc:
            raise BackupIOError(f"cannot copy database {path.name}: {exc}") from exc
        yield copy


def _backup(path: Path, copy: Path) -> None:
    source = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S)
    try:
        source.execute("PRAGMA query_only=ON")
        target = sqlite3.connect(copy)
        try:
            # pages=-1: the whole database in one step, under one read transaction.
            # A multi-step copy starts over whenever the node commits, so under
            # steady writes it might never finish.
            source.backup(target, pages=-1)
        finally:
            target.close()
    finally:
        source.close()
