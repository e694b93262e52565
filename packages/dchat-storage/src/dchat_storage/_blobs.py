"""Attachment content as sealed, deduplicated chunks, written and read as streams.

Theory of operation: an upload gets a random ``blob_id`` and a *pending* row
(``content_ix`` NULL). Its content is cut into :data:`CHUNK_SIZE` chunks, each
sealed on its own (associated data: blob id and chunk index, so chunks cannot
be reordered or moved between blobs) and committed a few at a time, so the
writer lock is never held for the whole upload and memory stays at a few
chunks. The content hash is computed on the way. :meth:`BlobStore.finalize`
then either publishes the blob (its sealed payload records hash, size and
chunk count, which readers verify, so a truncated or reordered blob is
detected) or, when a blob with the same content exists, discards the new
chunks and returns the existing blob: that is the deduplication. An abandoned
pending blob (crash, rejected upload) is removed by the garbage collector.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import delete, insert, select, update

from ._errors import StorageCorruptError
from ._rowcodec import SealedTable, index_value, row_ad
from ._schema import BlobChunk, BlobRow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from sqlalchemy import Connection

    from ._access import Access

__all__ = ("BLOBS", "CHUNK_SIZE", "BlobStore", "content_hash")

CHUNK_SIZE: Final = 64 * 1024
_CHUNKS_PER_COMMIT: Final = 16  # 1 MiB per write transaction
_CHUNK_PURPOSE: Final = "blob-chunk"

BLOBS = SealedTable(
    BlobRow, key="blob_id", indexes={"content_ix": ("content", "hash")}, ad=("blob_id",)
)


def content_hash() -> Any:
    """A fresh BLAKE2b-256 hasher, personalized for attachment content."""
    return hashlib.blake2b(digest_size=32, person=b"dchat-content")


class BlobStore:
    """Writes and reads blobs; used by :class:`AttachmentRepo`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def write(
        self, chunks: Iterable[bytes], now: float, check: Callable[[int], None]
    ) -> tuple[bytes, int, bytes, int]:
        """Store ``chunks`` as a pending blob.

        Args:
            chunks: The content, in pieces of at most :data:`CHUNK_SIZE`.
            now: The creation time.
            check: Called with the running size before each chunk is stored;
                it raises to abort (size limit, quota).

        Returns:
            ``(blob_id, size, digest, chunk_count)``. On any exception the
            pending blob is removed before the exception propagates.
        """
        blob_id = os.urandom(16)
        with self._access.write("start upload") as conn:
            conn.execute(insert(BlobRow).values(blob_id=blob_id, size=0, created_at=now))
        try:
            size, digest, count = self._write_chunks(blob_id, chunks, check)
        except BaseException:
            self.discard(blob_id)
            raise
        return blob_id, size, digest, count

    def _write_chunks(
        self, blob_id: bytes, chunks: Iterable[bytes], check: Callable[[int], None]
    ) -> tuple[int, bytes, int]:
        hasher, size, batch, count = content_hash(), 0, [], 0
        for idx, chunk in enumerate(chunks):
            count = idx + 1
            size += len(chunk)
            check(size)
            hasher.update(chunk)
            data = self._access.sealer.seal(_CHUNK_PURPOSE, row_ad(blob_id, idx), chunk)
            batch.append({"blob_id": blob_id, "idx": idx, "data": data})
            if len(batch) == _CHUNKS_PER_COMMIT:
                self._commit_chunks(batch)
                batch = []
        if batch:
            self._commit_chunks(batch)
        return size, hasher.digest(), count

    def _commit_chunks(self, batch: list[dict[str, Any]]) -> None:
        with self._access.write("store upload chunks") as conn:
            conn.execute(insert(BlobChunk), batch)

    def finalize(
        self, conn: Connection, blob_id: bytes, size: int, digest: bytes, chunks: int
    ) -> bytes:
        """Publish a pending blob, or drop it in favour of an identical one.

        Runs inside the caller's write transaction.

        Returns:
            The blob id to reference: ``blob_id`` or the existing duplicate's.
        """
        sealer = self._access.sealer
        content_ix = index_value(sealer, "content", digest)
        existing = conn.execute(
            select(BlobRow.blob_id).where(BlobRow.content_ix == content_ix)
        ).scalar_one_or_none()
        if existing is not None:
            _delete_blob(conn, blob_id)
            return bytes(existing)
        fields = {"hash": digest, "size": size, "chunks": chunks}
        row = BLOBS.row(sealer, fields, {"blob_id": blob_id})
        statement = update(BlobRow).where(BlobRow.blob_id == blob_id)
        conn.execute(
            statement.values(content_ix=row["content_ix"], payload=row["payload"], size=size)
        )
        return blob_id

    def discard(self, blob_id: bytes) -> None:
        """Remove a pending blob and its chunks."""
        with self._access.write("discard upload") as conn:
            _delete_blob(conn, blob_id)

    def read(self, blob_id: bytes) -> Iterator[bytes]:
        """Yield the blob's content chunk by chunk, verifying count, order and hash.

        Raises:
            StorageCorruptError: A chunk is missing, moved or altered.
        """
        with self._access.read("open attachment") as conn:
            row = conn.execute(
                select(BlobRow.blob_id, BlobRow.payload).where(BlobRow.blob_id == blob_id)
            ).one_or_none()
        if row is None or row.payload is None:
            raise StorageCorruptError("an attachment's content is missing")
        meta = BLOBS.fields(self._access.sealer, row._mapping)
        hasher = content_hash()
        for chunk in self._chunks(blob_id, meta["chunks"]):
            hasher.update(chunk)
            yield chunk
        if hasher.digest() != meta["hash"]:
            raise StorageCorruptError("an attachment's content does not match its hash")

    def _chunks(self, blob_id: bytes, count: int) -> Iterator[bytes]:
        for start in range(0, count, _CHUNKS_PER_COMMIT):
            stop = min(start + _CHUNKS_PER_COMMIT, count)
            query = (
                select(BlobChunk.idx, BlobChunk.data)
                .where(BlobChunk.blob_id == blob_id, BlobChunk.idx >= start, BlobChunk.idx < stop)
                .order_by(BlobChunk.idx)
            )
            with self._access.read("read attachment") as conn:
                rows = conn.execute(query).all()
            if [r.idx for r in rows] != list(range(start, stop)):
                raise StorageCorruptError("an attachment's content is incomplete")
            for idx, data in rows:
                yield self._access.sealer.open(_CHUNK_PURPOSE, row_ad(blob_id, idx), data)


def _delete_blob(conn: Connection, blob_id: bytes) -> None:
    # Chunks first and explicitly: no reliance on ON DELETE CASCADE being enforced.
    conn.execute(delete(BlobChunk).where(BlobChunk.blob_id == blob_id))
    conn.execute(delete(BlobRow).where(BlobRow.blob_id == blob_id))
