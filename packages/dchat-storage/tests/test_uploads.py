"""Upload validation: type detection, size limits, images, location, streaming."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dchat_storage import (
    Database,
    InvalidArgumentError,
    UploadLimits,
    UploadRejectedError,
    detect_media_type,
    open_database,
)
from dchat_storage.lowlevel import (
    ContentTypeMismatchError,
    DecompressionBombError,
    MalformedContentError,
    StorageKey,
    UploadTooLargeError,
)
from dchat_storage.testing import GPS_SAMPLE, image_bytes, jpeg_with_gps, media_samples
from dchat_testing import hostile_bytes

SAMPLES = media_samples()

KIND_OF = {
    "image": ("image/jpeg", "image/png", "image/gif", "image/webp"),
    "video": ("video/mp4", "video/quicktime", "video/webm", "video/x-matroska"),
    "audio": ("audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4", "audio/flac"),
    "document": ("application/pdf", "text/plain", "application/zip"),
}


@pytest.fixture
def sealed(db_path: Path) -> Iterator[Database]:
    with open_database(db_path, key=StorageKey.generate()) as database:
        yield database


@pytest.mark.parametrize("media_type", sorted(SAMPLES))
def test_every_sample_is_recognised(media_type: str) -> None:
    assert detect_media_type(SAMPLES[media_type]) == media_type


@pytest.mark.parametrize(
    "head", [b"", b"\x00\x01\x02binary", b"RIFF\x00\x00\x00\x00AVI ", b"OggS\x00theora"]
)
def test_unknown_content_is_not_guessed(head: bytes) -> None:
    assert detect_media_type(head) is None


@given(hostile_bytes(max_size=512))
def test_detection_is_total(data: bytes) -> None:
    assert detect_media_type(data) is None or "/" in str(detect_media_type(data))


@pytest.mark.parametrize(
    ("kind", "media_type"), [(k, t) for k, types in KIND_OF.items() for t in types]
)
def test_matching_uploads_are_accepted(db: Database, kind: str, media_type: str) -> None:
    record, stored = db.attachments.upload(
        "id-a", kind, media_type, io.BytesIO(SAMPLES[media_type]), 1.0
    )
    assert stored
    assert record.media_type == media_type
    if kind != "image":
        assert db.attachments.read(record.attachment_id) == SAMPLES[media_type]


@pytest.mark.parametrize(
    ("kind", "declared", "content"),
    [
        ("image", "image/jpeg", "image/png"),  # an image, but not the one declared
        ("image", "image/png", "application/pdf"),
        ("video", "video/mp4", "text/plain"),
        ("voice", "audio/ogg", "audio/mpeg"),
        ("audio", "audio/mpeg", "video/webm"),
        ("document", "application/pdf", "image/jpeg"),
        ("document", "text/plain", "application/zip"),
        ("image", "application/pdf", "application/pdf"),  # kind does not take the type
    ],
)
def test_uploads_lying_about_their_type_are_refused(
    db: Database, kind: str, declared: str, content: str
) -> None:
    with pytest.raises(ContentTypeMismatchError) as caught:
        db.attachments.upload("id-a", kind, declared, io.BytesIO(SAMPLES[content]), 1.0)
    assert isinstance(caught.value, ValueError)
    assert db.attachments.usage("id-a") == 0


def test_aliases_and_containers(db: Database) -> None:
    for kind, declared, content in (
        ("image", "IMAGE/JPG", "image/jpeg"),
        ("voice", "audio/opus", "audio/ogg"),
        ("voice", "audio/webm; codecs=opus", "video/webm"),
        ("audio", "audio/mp4", "video/mp4"),
        ("document", "application/octet-stream", "application/zip"),
        ("document", "image/png", "image/png"),  # an image sent as a file
    ):
        db.attachments.upload("id-a", kind, declared, io.BytesIO(SAMPLES[content]), 1.0)


def test_bad_kind_and_empty_upload(db: Database) -> None:
    with pytest.raises(InvalidArgumentError):
        db.attachments.upload("id-a", "sticker", "image/png", io.BytesIO(b"x"), 1.0)
    with pytest.raises(MalformedContentError):
        db.attachments.upload("id-a", "document", "application/octet-stream", io.BytesIO(), 1.0)


_TYPES = st.sampled_from(sorted({t for types in KIND_OF.values() for t in types}))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["image", "video", "audio", "voice", "document"]),
    declared=_TYPES,
    data=st.one_of(st.binary(min_size=1, max_size=300), st.sampled_from(sorted(SAMPLES.values()))),
)
def test_hostile_uploads_are_accepted_or_refused_cleanly(
    db: Database, kind: str, declared: str, data: bytes
) -> None:
    before = db.attachments.usage("id-h")
    try:
        record, _ = db.attachments.upload("id-h", kind, declared, io.BytesIO(data), 1.0)
    except UploadRejectedError:
        assert db.attachments.usage("id-h") == before
        return
    assert record.media_type in KIND_OF.get(kind, ()) or kind in ("voice", "document")
    assert detect_media_type(data) is not None


def test_size_limit_per_kind(db: Database) -> None:
    limits = UploadLimits(voice=1000)
    voice = SAMPLES["audio/ogg"] + bytes(2000)
    with pytest.raises(UploadTooLargeError):
        db.attachments.upload("id-a", "voice", "audio/ogg", io.BytesIO(voice), 1.0, limits=limits)
    assert db.attachments.usage("id-a") == 0
    db.attachments.upload(
        "id-a", "voice", "audio/ogg", io.BytesIO(voice[:1000]), 1.0, limits=limits
    )
    image = image_bytes("PNG", (300, 300))
    with pytest.raises(UploadTooLargeError):
        db.attachments.upload(
            "id-a", "image", "image/png", io.BytesIO(image), 1.0, limits=UploadLimits(image=100)
        )


def _gps(data: bytes) -> dict[int, object]:
    with Image.open(io.BytesIO(data)) as img:
        return dict(img.getexif().get_ifd(0x8825))


def _pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").tobytes()


def test_jpeg_location_is_stripped_losslessly(sealed: Database) -> None:
    original = jpeg_with_gps()
    assert _gps(original)  # the sample really carries a location
    record, _ = sealed.attachments.upload("id-a", "image", "image/jpeg", io.BytesIO(original), 1.0)
    stored = sealed.attachments.read(record.attachment_id)
    assert _gps(stored) == {}
    assert not record.location_kept
    with Image.open(io.BytesIO(stored)) as img:
        assert img.getexif()[0x010F] == "TestCam"  # other metadata is kept
    assert _pixels(stored) == _pixels(original)  # not re-encoded
    assert (
        record.content_hash
        == hashlib.blake2b(stored, digest_size=32, person=b"dchat-content").digest()
    )


def test_location_is_kept_when_the_sender_opts_in(db: Database) -> None:
    original = jpeg_with_gps()
    record, _ = db.attachments.upload(
        "id-a", "image", "image/jpeg", io.BytesIO(original), 1.0, keep_location=True
    )
    assert db.attachments.read(record.attachment_id) == original
    assert record.location_kept
    assert _gps(db.attachments.read(record.attachment_id)).keys() == GPS_SAMPLE.keys()


def test_png_location_is_stripped(db: Database) -> None:
    exif = Image.Exif()
    exif[0x8825] = GPS_SAMPLE
    original = image_bytes("PNG", (50, 40), exif=exif.tobytes())
    assert _gps(original)
    record, _ = db.attachments.upload("id-a", "image", "image/png", io.BytesIO(original), 1.0)
    stored = db.attachments.read(record.attachment_id)
    assert _gps(stored) == {}
    assert _pixels(stored) == _pixels(original)


@pytest.mark.parametrize(("orientation", "expected"), [(1, (640, 480)), (6, (480, 640))])
def test_dimensions_and_thumbnail(
    db: Database, orientation: int, expected: tuple[int, int]
) -> None:
    data = jpeg_with_gps((640, 480), orientation)
    record, _ = db.attachments.upload("id-a", "image", "image/jpeg", io.BytesIO(data), 1.0)
    assert (record.width, record.height) == expected
    with Image.open(io.BytesIO(record.thumbnail)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (expected[0] // 2, expected[1] // 2)  # longest side 320


def test_decompression_bombs_are_refused(db: Database) -> None:
    small_file = image_bytes("PNG", (2000, 1000), optimize=True)
    with pytest.raises(DecompressionBombError):
        db.attachments.upload(
            "id-a", "image", "image/png", io.BytesIO(small_file), 1.0,
            limits=UploadLimits(max_pixels=1_000_000),
        )  # fmt: skip
    # Beyond Pillow's own guard too: a 120-megapixel, ~100 KB PNG.
    out = io.BytesIO()
    Image.new("1", (12_000, 10_000)).save(out, "PNG", optimize=True)
    assert len(out.getvalue()) < 1_000_000
    with pytest.raises(DecompressionBombError):
        db.attachments.upload("id-a", "image", "image/png", io.BytesIO(out.getvalue()), 1.0)
    assert db.attachments.usage("id-a") == 0


def test_truncated_image_is_malformed(db: Database) -> None:
    data = jpeg_with_gps()
    with pytest.raises(MalformedContentError):
        db.attachments.upload(
            "id-a", "image", "image/jpeg", io.BytesIO(data[: len(data) // 2]), 1.0
        )


class _Generated(io.RawIOBase):
    """A stream of ``size`` pseudo-random bytes, produced as it is read."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.hash = hashlib.blake2b(digest_size=32, person=b"dchat-content")
        self.counter = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left, 8192)
        if self.counter == 0:
            piece = (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(n))[:n]
        else:
            piece = hashlib.shake_256(self.counter.to_bytes(8, "big")).digest(n)
        self.counter += 1
        buffer[:n] = piece
        self.left -= n
        self.hash.update(piece)
        return n


@pytest.mark.parametrize("encrypted", [False, True])
def test_large_uploads_stream_in_bounded_memory(db_path: Path, encrypted: bool) -> None:
    size = 24 * 1024 * 1024
    stream = _Generated(size)
    key = StorageKey.generate() if encrypted else None
    with open_database(db_path, key=key) as db:
        tracemalloc.start()
        try:
            record, _ = db.attachments.upload("id-a", "video", "video/mp4", stream, 1.0)
            _, upload_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            digest = hashlib.blake2b(digest_size=32, person=b"dchat-content")
            for chunk in db.attachments.open(record.attachment_id):
                digest.update(chunk)
            _, read_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert record.size == size
    assert record.content_hash == stream.hash.digest() == digest.digest()
    # Well below the file size: a few 64 KiB chunks at a time.
    assert upload_peak < size / 8, upload_peak
    assert read_peak < size / 8, read_peak


def test_stored_content_is_verified_on_read(sealed: Database) -> None:
    from sqlalchemy import delete

    from dchat_storage import StorageCorruptError
    from dchat_storage._schema import BlobChunk

    data = b"%PDF-1.7\n" + os.urandom(300_000)
    record, _ = sealed.attachments.upload(
        "id-a", "document", "application/pdf", io.BytesIO(data), 1.0
    )
    with sealed._access.write("drop the last chunk") as conn:
        conn.execute(delete(BlobChunk).where(BlobChunk.idx == 4))
    with pytest.raises(StorageCorruptError):
        sealed.attachments.read(record.attachment_id)


def test_animated_image_keeps_its_frames_when_stripped(db: Database) -> None:
    exif = Image.Exif()
    exif[0x8825] = GPS_SAMPLE
    frames = [Image.new("RGB", (40, 30), color) for color in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], exif=exif.tobytes())
    assert _gps(out.getvalue())  # the sample carries a location, so stripping must run
    record, _ = db.attachments.upload(
        "id-a", "image", "image/webp", io.BytesIO(out.getvalue()), 1.0
    )
    stored = db.attachments.read(record.attachment_id)
    assert _gps(stored) == {}
    with Image.open(io.BytesIO(stored)) as img:
        assert img.n_frames == 3
