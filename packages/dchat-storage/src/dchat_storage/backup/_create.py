"""Taking a snapshot: scan, chunk, deduplicate, seal, store; the manifest last.

The manifest is written only after every chunk it names is stored, so a crash
or an error part-way leaves no snapshot, only unreferenced chunks that the next
``prune`` removes. A chunk whose id is already stored is not written again; the
set of stored ids is listed once per run instead of asking the destination
about every chunk.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._errors import BackupIOError
from ._manifest import ChunkRef, Entry, Manifest
from ._report import CreateResult, Snapshot
from ._source import is_sqlite, scan, sqlite_snapshot

if TYPE_CHECKING:
    from pathlib import Path

    from ._chunker import Chunker
    from ._report import Progress
    from ._source import SourceItem
    from ._store import BlobStore

__all__ = ("create_snapshot",)

SNAPSHOT_ID_SIZE = 16


@dataclass
class _Run:
    store: BlobStore
    chunker: Chunker
    known: set[bytes]
    total: int
    progress: Progress | None
    chunks: int = 0
    new_chunks: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    entries: list[Entry] = field(default_factory=list)

    def advance(self, n: int) -> None:
        self.bytes_read += n
        if self.progress is not None:
            self.progress(self.bytes_read, max(self.total, self.bytes_read))


def create_snapshot(
    store: BlobStore,
    chunker: Chunker,
    data_dir: Path,
    *,
    time_ns: int,
    exclude: frozenset[Path] = frozenset(),
    progress: Progress | None = None,
) -> CreateResult:
    """Back up ``data_dir`` into the repository; see :meth:`Repository.create`."""
    items = scan(data_dir, exclude=exclude)
    total = sum(item.size for item in items)
    run = _Run(store, chunker, store.chunk_ids(), total, progress)
    for item in items:
        if item.kind == "dir":
            run.entries.append(Entry(item.rel, "dir", item.mode, item.mtime_ns))
        else:
            run.entries.append(_add_file(run, item, data_dir))
    manifest = Manifest(
        snapshot_id=os.urandom(SNAPSHOT_ID_SIZE),
        time_ns=time_ns,
        source=str(data_dir),
        entries=tuple(run.entries),
    )
    run.bytes_written += store.put_manifest(manifest)
    return CreateResult(
        snapshot=Snapshot.of(manifest),
        chunks=run.chunks,
        new_chunks=run.new_chunks,
        bytes_read=run.bytes_read,
        bytes_written=run.bytes_written,
    )


def _add_file(run: _Run, item: SourceItem, data_dir: Path) -> Entry:
    try:
        if is_sqlite(item.path):
            with sqlite_snapshot(item.path, data_dir) as copy:
                return _store_file(run, item, copy)
        return _store_file(run, item, item.path)
    except OSError as exc:
        raise BackupIOError(f"cannot back up {item.rel}: {exc.strerror or exc}") from exc


def _store_file(run: _Run, item: SourceItem, path: Path) -> Entry:
    digest = hashlib.blake2b(digest_size=32)
    refs = []
    with path.open("rb") as handle:
        for chunk in run.chunker.stream(handle):
            chunk_id = run.store.keys.chunk_id(chunk)
            if chunk_id not in run.known:
                run.bytes_written += run.store.put_chunk(chunk_id, chunk)
                run.known.add(chunk_id)
                run.new_chunks += 1
            run.chunks += 1
            refs.append(ChunkRef(chunk_id, len(chunk)))
            digest.update(chunk)
            run.advance(len(chunk))
    return Entry(
        path=item.rel,
        kind="file",
        mode=item.mode,
        mtime_ns=item.mtime_ns,
        size=sum(ref.size for ref in refs),
        digest=digest.digest(),
        chunks=tuple(refs),
    )
