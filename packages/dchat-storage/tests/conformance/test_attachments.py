"""Attachments on every backend: round trip, deduplication, quota, links, collection."""

from __future__ import annotations

import io
import os

import pytest
from sqlalchemy import func, insert, select

from dchat_storage import Database, LifecyclePolicy, NotFoundError, QuotaExceededError, UploadLimits
from dchat_storage._schema import AttachmentRow, BlobChunk, BlobRow
from dchat_storage.lowlevel import ContentTypeMismatchError

PDF = b"%PDF-1.7\n" + os.urandom(200_000)  # several chunks
DAY = 86400.0


def _rows(db: Database) -> tuple[int, int, int]:
    with db._access.read("count") as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (AttachmentRow, BlobRow, BlobChunk)
        )


def _upload(db: Database, owner: str, data: bytes, now: float = 0.0, **kw: object):
    return db.attachments.upload(owner, "document", "application/pdf", io.BytesIO(data), now, **kw)


def test_upload_round_trip(db: Database) -> None:
    record, stored = _upload(db, "id-alice", PDF, name="report.pdf")
    assert stored
    assert (record.kind, record.media_type, record.size, record.name) == (
        "document",
        "application/pdf",
        len(PDF),
        "report.pdf",
    )
    assert db.attachments.get(record.attachment_id) == record
    assert db.attachments.read(record.attachment_id) == PDF
    assert db.attachments.usage("id-alice") == len(PDF)
    assert "report.pdf" not in repr(record)


def test_same_content_is_stored_once(db: Database) -> None:
    first, _ = _upload(db, "id-alice", PDF)
    again, stored = _upload(db, "id-alice", PDF, now=5.0)
    other, other_new = _upload(db, "id-bob", PDF)
    assert (again, stored) == (first, False)
    assert other_new
    assert other.attachment_id != first.attachment_id
    attachments, blobs, chunks = _rows(db)
    assert (attachments, blobs) == (2, 1)  # one copy of the content
    assert chunks == -(-len(PDF) // (64 * 1024))
    assert db.attachments.usage("id-alice") == len(PDF)


def test_lying_upload_is_refused_and_leaves_nothing(db: Database) -> None:
    before = _rows(db)
    with pytest.raises(ContentTypeMismatchError):
        db.attachments.upload("id-a", "image", "image/png", io.BytesIO(PDF), 0.0)
    assert _rows(db) == before
    assert db.attachments.usage("id-a") == 0


def test_quota_is_per_identity(db: Database) -> None:
    limits = UploadLimits(quota=len(PDF) + 100)
    _upload(db, "id-alice", PDF, limits=limits)
    with pytest.raises(QuotaExceededError):
        _upload(db, "id-alice", b"%PDF-1.4\n" + os.urandom(1000), limits=limits)
    assert _rows(db)[:2] == (1, 1)
    _upload(db, "id-bob", b"%PDF-1.4\n" + os.urandom(1000), limits=limits)  # bob has room


def test_links_keep_attachments_from_collection(db: Database) -> None:
    kept, _ = _upload(db, "id-alice", PDF)
    loose, _ = _upload(db, "id-alice", b"%PDF-1.5\n" + os.urandom(500))
    db.messages.add(b"m1", "out", "id-bob", "see attached", 0.0, 0.0)
    db.attachments.attach(b"m1", kept.attachment_id)
    assert db.attachments.for_message(b"m1") == [kept]
    with pytest.raises(NotFoundError):
        db.attachments.attach(b"missing", kept.attachment_id)
    policy = LifecyclePolicy(attachment_grace=DAY)
    assert db.lifecycle.sweep(DAY - 1, policy).attachments == 0  # still in its grace period
    report = db.lifecycle.sweep(DAY + 1, policy)
    assert (report.attachments, report.blobs) == (1, 1)
    assert db.attachments.get(loose.attachment_id) is None
    assert db.attachments.read(kept.attachment_id) == PDF
    # Once the message is gone, its attachment is collectable too.
    db.messages.delete(b"m1")
    report = db.lifecycle.sweep(DAY + 2, policy)
    assert (report.attachments, report.blobs) == (1, 1)
    assert _rows(db) == (0, 0, 0)
    assert db.lifecycle.sweep(DAY + 2, policy).total == 0


def test_failed_stream_cleans_up(db: Database) -> None:
    def broken_stream() -> io.RawIOBase:
        class Broken(io.RawIOBase):
            calls = 0

            def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
                self.calls += 1
                if self.calls > 40:
                    raise OSError("connection reset")
                buffer[: len(buffer)] = b"\x01" * len(buffer)
                return len(buffer)

            def readable(self) -> bool:
                return True

        return Broken()

    with pytest.raises(OSError, match="reset"):
        db.attachments.upload("id-a", "document", "application/octet-stream", broken_stream(), 0.0)
    assert _rows(db) == (0, 0, 0)  # the failed upload cleaned up after itself


def test_upload_abandoned_by_a_crash_is_collected_after_grace(db: Database) -> None:
    # What a SIGKILL mid-upload leaves: a pending blob (no content_ix) with chunks.
    with db._access.write("simulate crash") as conn:
        conn.execute(insert(BlobRow).values(blob_id=b"p" * 16, size=0, created_at=10.0))
        conn.execute(insert(BlobChunk).values(blob_id=b"p" * 16, idx=0, data=b"partial"))
    policy = LifecyclePolicy(attachment_grace=DAY)
    assert db.lifecycle.sweep(DAY, policy).blobs == 0  # could still be streaming
    assert db.lifecycle.sweep(DAY + 11, policy).blobs == 1
    assert _rows(db) == (0, 0, 0)


def test_purge_deletes_an_unlinked_attachment_and_its_content_at_once(db: Database) -> None:
    mine, _ = _upload(db, "id-alice", PDF)
    shared, _ = _upload(db, "id-bob", PDF)  # the same bytes: one blob, two attachments
    db.messages.add(b"m1", "out", "id-bob", "see attached", 0.0, 0.0)
    db.attachments.attach(b"m1", mine.attachment_id)
    assert db.attachments.purge(mine.attachment_id) is False  # a message still links it
    db.messages.delete(b"m1")
    assert db.attachments.purge(mine.attachment_id) is True
    assert db.attachments.get(mine.attachment_id) is None
    assert db.attachments.read(shared.attachment_id) == PDF  # shared content stays
    assert db.attachments.purge(shared.attachment_id) is True
    assert _rows(db) == (0, 0, 0)  # no grace period, no sweep
    assert db.attachments.purge(shared.attachment_id) is False
