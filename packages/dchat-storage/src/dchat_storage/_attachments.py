"""Attachments: validated, deduplicated, streamed uploads with a per-identity quota.

An upload is checked before anything is kept: its kind must take the
declared type, the content's magic numbers must agree with it (``_uploads``),
images are decoded under a pixel bound, measured, thumbnailed and stripped of
location (``_images``), and the size limit and quota are enforced while the
content streams in (``_blobs``). Any refusal raises a typed
:class:`UploadRejectedError` or :class:`QuotaExceededError` and leaves nothing
behind. Identical content is stored once (per database); one identity
uploading the same bytes twice gets its existing attachment back.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, func, insert, select

from ._blobs import CHUNK_SIZE, BlobStore
from ._errors import (
    MalformedContentError,
    NotFoundError,
    QuotaExceededError,
    UploadTooLargeError,
)
from ._images import process_image
from ._records import AttachmentRecord
from ._rowcodec import SealedTable, index_value
from ._schema import AttachmentRow, BlobChunk, BlobRow, Message, MessageAttachment
from ._sniff import SNIFF_SIZE, sniff
from ._uploads import UploadLimits, check_type

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Iterator, Mapping

    from sqlalchemy import Connection

    from ._access import Access

__all__ = ("ATTACHMENTS", "AttachmentRepo", "Readable")

ATTACHMENTS = SealedTable(
    AttachmentRow,
    key="attachment_id",
    indexes={"owner_ix": ("identity-id", "owner_id")},
    ad=("attachment_id",),
)
_COLUMNS = (
    AttachmentRow.attachment_id,
    AttachmentRow.size,
    AttachmentRow.payload,
    AttachmentRow.created_at,
)


class Readable(Protocol):
    """A binary file-like object: ``read(n)`` returns at most ``n`` bytes, b"" at the end."""

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes."""
        ...


def _read_up_to(stream: Readable, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at the end (short reads are retried)."""
    buf = bytearray()
    while len(buf) < size:
        more = stream.read(size - len(buf))
        if not more:
            break
        buf += more
    return bytes(buf)


def _chunks(head: bytes, stream: Readable) -> Iterator[bytes]:
    """Yield the content in :data:`CHUNK_SIZE` pieces: ``head`` first, then the stream."""
    pending = head
    while True:
        chunk = pending + _read_up_to(stream, CHUNK_SIZE - len(pending))
        pending = b""
        if chunk:
            yield chunk
        if len(chunk) < CHUNK_SIZE:
            return


def _split(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK_SIZE):
        yield data[start : start + CHUNK_SIZE]


class AttachmentRepo:
    """Uploaded attachments. Obtain it as :attr:`Database.attachments`."""

    def __init__(self, access: Access) -> None:
        self._access = access
        self._blobs = BlobStore(access)

    def upload(
        self,
        owner_id: str,
        kind: str,
        declared_type: str,
        stream: Readable,
        now: float,
        *,
        name: str = "",
        keep_location: bool = False,
        limits: UploadLimits | None = None,
    ) -> tuple[AttachmentRecord, bool]:
        """Validate and store an upload, reading ``stream`` in chunks.

        Args:
            owner_id: Identity id whose quota the upload counts against.
            kind: ``image``, ``video``, ``audio``, ``voice`` or ``document``.
            declared_type: The media type the sender declared.
            stream: The content; read in chunks, never whole (images excepted,
                up to their size limit, because decoding needs the whole file).
            now: The upload time.
            name: The file name, kept sealed.
            keep_location: Keep an image's location metadata (sender's opt-in).
            limits: Size limits and quota; default :class:`UploadLimits`.

        Returns:
            ``(record, stored)``; ``stored`` is False when this owner already
            had this exact content, whose existing record is returned.

        Raises:
            ContentTypeMismatchError: The content is not of the declared type.
            UploadTooLargeError: Larger than the kind's limit.
            DecompressionBombError: An image with too many pixels.
            MalformedContentError: Empty, or an image that does not decode.
            QuotaExceededError: The owner's quota would be exceeded.
            InvalidArgumentError: Unknown ``kind``.
        """
        limits = limits or UploadLimits()
        head = _read_up_to(stream, SNIFF_SIZE)
        media_type = check_type(kind, declared_type, sniff(head))
        if not head:
            raise MalformedContentError("the upload is empty")
        check = self._checker(owner_id, kind, limits)
        meta: dict[str, Any] = {"width": None, "height": None, "thumbnail": b""}
        if kind == "image":
            data = head + _read_up_to(stream, limits.image + 1 - len(head))
            check(len(data))
            image = process_image(data, media_type, keep_location=keep_location, limits=limits)
            meta = {"width": image.width, "height": image.height, "thumbnail": image.thumbnail}
            chunks: Iterator[bytes] = _split(image.data)
        else:
            chunks = _chunks(head, stream)
        meta |= {"kind": kind, "media_type": media_type, "name": name}
        meta["location_kept"] = keep_location
        blob_id, size, digest, count = self._blobs.write(chunks, now, check)
        try:
            with self._access.write("finish upload") as conn:
                stored_id = self._blobs.finalize(conn, blob_id, size, digest, count)
                return self._attach_blob(conn, owner_id, stored_id, size, digest, meta, now, limits)
        except BaseException:
            # The transaction rolled back, so the pending blob (never a shared one) is still there.
            self._blobs.discard(blob_id)
            raise

    def _checker(self, owner_id: str, kind: str, limits: UploadLimits) -> Callable[[int], None]:
        used, limit = self.usage(owner_id), limits.limit_for(kind)

        def check(size: int) -> None:
            if size > limit:
                raise UploadTooLargeError(f"a {kind} may be at most {limit} bytes")
            if used + size > limits.quota:
                raise QuotaExceededError(f"the upload exceeds the quota of {limits.quota} bytes")

        return check

    def _attach_blob(
        self,
        conn: Connection,
        owner_id: str,
        blob_id: bytes,
        size: int,
        digest: bytes,
        meta: Mapping[str, Any],
        now: float,
        limits: UploadLimits,
    ) -> tuple[AttachmentRecord, bool]:
        sealer = self._access.sealer
        owner_ix = index_value(sealer, "identity-id", owner_id)
        existing = conn.execute(
            select(*_COLUMNS).where(
                AttachmentRow.owner_ix == owner_ix, AttachmentRow.blob_id == blob_id
            )
        ).one_or_none()
        if existing is not None:
            return self._record(existing._mapping), False
        # Checked again under the writer lock: another upload may have finished meanwhile.
        if _usage(conn, owner_ix) + size > limits.quota:
            raise QuotaExceededError(f"the upload exceeds the quota of {limits.quota} bytes")
        fields = {**meta, "owner_id": owner_id, "hash": digest}
        clear = {
            "attachment_id": os.urandom(16),
            "blob_id": blob_id,
            "size": size,
            "created_at": now,
        }
        row = ATTACHMENTS.row(sealer, fields, clear)
        conn.execute(insert(AttachmentRow).values(row))
        return self._record(row), True

    def get(self, attachment_id: bytes) -> AttachmentRecord | None:
        """Return an attachment's metadata, or None."""
        query = select(*_COLUMNS).where(AttachmentRow.attachment_id == attachment_id)
        with self._access.read("get attachment") as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else self._record(row._mapping)

    def open(self, attachment_id: bytes) -> Iterator[bytes]:
        """Yield an attachment's content in chunks, verified against its hash.

        Raises:
            NotFoundError: No such attachment.
            StorageCorruptError: The stored content was altered or truncated.
        """
        query = select(AttachmentRow.blob_id).where(AttachmentRow.attachment_id == attachment_id)
        with self._access.read("find attachment") as conn:
            blob_id = conn.execute(query).scalar_one_or_none()
        if blob_id is None:
            raise NotFoundError(f"no attachment {attachment_id.hex()}")
        return self._blobs.read(bytes(blob_id))

    def read(self, attachment_id: bytes) -> bytes:
        """Return an attachment's whole content (for small files; see :meth:`open`)."""
        return b"".join(self.open(attachment_id))

    def usage(self, owner_id: str) -> int:
        """Return the bytes of attachments ``owner_id`` stores (its quota use)."""
        owner_ix = index_value(self._access.sealer, "identity-id", owner_id)
        with self._access.read("attachment usage") as conn:
            return _usage(conn, owner_ix)

    def attach(self, message_id: bytes, attachment_id: bytes) -> None:
        """Reference an attachment from a message, which keeps it from collection.

        Raises:
            NotFoundError: The message or the attachment does not exist.
        """
        message_ix = index_value(self._access.sealer, "message-id", message_id)
        with self._access.write("attach") as conn:
            seq = conn.execute(
                select(Message.seq).where(Message.message_ix == message_ix)
            ).scalar_one_or_none()
            found = conn.execute(
                select(AttachmentRow.attachment_id).where(
                    AttachmentRow.attachment_id == attachment_id
                )
            ).scalar_one_or_none()
            if seq is None or found is None:
                raise NotFoundError("no such message or attachment")
            link = {"message_seq": seq, "attachment_id": attachment_id}
            conn.execute(delete(MessageAttachment).filter_by(**link))
            conn.execute(insert(MessageAttachment).values(link))

    def for_message(self, message_id: bytes) -> builtins.list[AttachmentRecord]:
        """Return the attachments a message references."""
        message_ix = index_value(self._access.sealer, "message-id", message_id)
        query = (
            select(*_COLUMNS)
            .join(MessageAttachment, MessageAttachment.attachment_id == AttachmentRow.attachment_id)
            .join(Message, Message.seq == MessageAttachment.message_seq)
            .where(Message.message_ix == message_ix)
            .order_by(AttachmentRow.created_at)
        )
        with self._access.read("list attachments") as conn:
            rows = conn.execute(query).all()
        return [self._record(row._mapping) for row in rows]

    def delete(self, attachment_id: bytes) -> bool:
        """Delete an attachment and its message links; its content is collected later."""
        with self._access.write("delete attachment") as conn:
            where = MessageAttachment.attachment_id == attachment_id
            conn.execute(delete(MessageAttachment).where(where))
            statement = delete(AttachmentRow).where(AttachmentRow.attachment_id == attachment_id)
            return conn.execute(statement).rowcount > 0

    def purge(self, attachment_id: bytes) -> bool:
        """Delete an attachment no message links to any more, and its content now.

        For a disappearing message's file: nothing of it waits for the next
        collection. The content stays while another attachment shares it
        (storage deduplicates), and a linked attachment is left alone.

        Returns:
            Whether the attachment was deleted.
        """
        with self._access.write("purge attachment") as conn:
            linked = select(MessageAttachment.message_seq).where(
                MessageAttachment.attachment_id == attachment_id
            )
            blob = conn.execute(
                select(AttachmentRow.blob_id).where(AttachmentRow.attachment_id == attachment_id)
            ).scalar_one_or_none()
            if blob is None or conn.execute(linked.limit(1)).first() is not None:
                return False
            conn.execute(delete(AttachmentRow).where(AttachmentRow.attachment_id == attachment_id))
            shared = select(AttachmentRow.attachment_id).where(AttachmentRow.blob_id == blob)
            if conn.execute(shared.limit(1)).first() is None:
                conn.execute(delete(BlobChunk).where(BlobChunk.blob_id == blob))
                conn.execute(delete(BlobRow).where(BlobRow.blob_id == blob))
            return True

    def _record(self, row: Mapping[Any, Any]) -> AttachmentRecord:
        f = ATTACHMENTS.fields(self._access.sealer, row)
        return AttachmentRecord(
            attachment_id=bytes(row["attachment_id"]),
            owner_id=f["owner_id"],
            kind=f["kind"],
            media_type=f["media_type"],
            name=f["name"],
            size=row["size"],
            content_hash=f["hash"],
            width=f["width"],
            height=f["height"],
            thumbnail=f["thumbnail"],
            location_kept=f["location_kept"],
            created_at=row["created_at"],
        )


def _usage(conn: Connection, owner_ix: bytes) -> int:
    query = select(func.coalesce(func.sum(AttachmentRow.size), 0)).where(
        AttachmentRow.owner_ix == owner_ix
    )
    return int(conn.execute(query).scalar_one())
