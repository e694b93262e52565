"""Attachments: the descriptor in the ratcheted message, sealing, opening, re-validation."""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_messaging import (
    Attachment,
    AttachmentRefusedError,
    Content,
    EnvelopeRejectedError,
    MessageReceived,
)
from dchat_messaging.attachments import (
    OpenedReader,
    check_claim,
    describe,
    seal_stored,
    sealed_from,
    store_received,
)
from dchat_messaging.lowlevel import AttachmentBook, AttachmentEntry
from dchat_privacy import pad
from dchat_storage import Database, UploadLimits, open_database
from dchat_storage.lowlevel import StorageKey
from dchat_storage.testing import image_bytes, media_samples

if TYPE_CHECKING:
    from pathlib import Path

    from dchat_testing import EngineNet as Net

T0 = 1000.0
SAMPLES = media_samples()
PNG = image_bytes("PNG", (300, 200))


def file_attachment(**changes: object) -> Attachment:
    base = Attachment(
        "document",
        blob_id=b"b" * 32,
        key=b"k" * 32,
        size=1000,
        sealed_size=1000 + 8 + 16 + 24,  # padme(1008) = 1032
        media_type="application/pdf",
        relay="127.0.0.1:4000",
        name="report.pdf",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


ATTACHMENTS = st.one_of(
    st.builds(
        file_attachment,
        kind=st.sampled_from(["image", "video", "audio", "voice", "document"]),
        caption=st.text(max_size=50),
        name=st.text(max_size=40),
        size=st.integers(0, 2**40),
        thumbnail=st.binary(max_size=100),
        duration_ms=st.integers(0, 10**6),
        waveform=st.binary(max_size=128),
    ),
    st.builds(
        Attachment.location,
        st.floats(-90, 90),
        st.floats(-180, 180),
        st.text(max_size=200),
    ),
)


@given(ATTACHMENTS)
def test_an_attachment_travels_in_a_message_and_comes_back_equal(attachment: Attachment) -> None:
    content = Content.attachment_message(attachment, now_ms=5)
    back = Content.from_padded(content.to_padded())
    assert back.attachment == attachment
    assert back.kind == "text"
    assert back.text == (attachment.caption or attachment.summary())


def test_a_location_carries_coordinates_and_a_label_but_no_blob() -> None:
    here = Attachment.location(48.858222, 2.2945, "Tour Eiffel")
    assert (here.latitude_e6, here.longitude_e6) == (48_858_222, 2_294_500)
    assert here.blob_id == b""
    assert "48.858222,2.294500 Tour Eiffel" in here.summary()
    with pytest.raises(ValueError, match="lat"):
        Attachment.location(91, 0)


def body_message(body: dict[str, object]) -> bytes:
    return pad(canonical_encode({"v": 1, "mid": bytes(16), "ts": 1, "body": body}))


GOOD = file_attachment().to_map()


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "v": 2},
        {**GOOD, "kind": "hologram"},
        {**GOOD, "blob": b"short"},
        {**GOOD, "key": b"k" * 31},
        {**GOOD, "sealed": 0},
        {**GOOD, "w": 10},  # a width without a height
        {**GOOD, "thumb": b"x" * (32 * 1024 + 1)},
        {**GOOD, "wave": b"x" * 129},
        {**GOOD, "extra": 1},
        {k: v for k, v in GOOD.items() if k != "relay"},
        {"t": "att", "v": 1, "kind": "location", "lat": 91_000_000, "lon": 0},
        {"t": "att", "v": 1, "kind": "location", "lat": 0, "lon": 0, "blob": b"b" * 32},
        {"t": "nope"},
    ],
)
def test_a_malformed_attachment_body_is_rejected_like_any_bad_message(
    body: dict[str, object],
) -> None:
    with pytest.raises(EnvelopeRejectedError):
        Content.from_padded(body_message(body))


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(sorted(GOOD)),
        st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=300) | st.text(max_size=50),
    )
)
def test_any_hostile_attachment_map_is_a_typed_rejection(changes: dict[str, object]) -> None:
    # Either it parses into a whole descriptor or it is the one typed rejection; never a crash.
    with contextlib.suppress(EnvelopeRejectedError):
        content = Content.from_padded(body_message({**GOOD, **changes}))
        assert isinstance(content.attachment, Attachment)
        assert Attachment.from_map(content.attachment.to_map()) == content.attachment


def test_the_descriptor_is_kept_with_the_message_on_both_sides(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    attachment = file_attachment(caption="the report")
    content = Content.attachment_message(attachment, now_ms=int(T0 * 1000))
    waiting = alice.engine.send(content, [bob.address], now=T0)
    for device in waiting:
        alice.engine.bundle_received(device, net.relay.take_bundle(bytes(device.mailbox)), now=T0)
    alice.flush()
    (got,) = [e for e in bob.fetch(now=T0 + 1) if isinstance(e, MessageReceived)]
    assert got.content.attachment == attachment
    assert bob.texts() == ["the report"]
    mid = bytes(content.message_id)
    for person in (alice, bob):
        entry = AttachmentBook(person.store).get(mid)
        assert entry is not None
        assert entry.attachment == attachment
        assert entry.state == "pending"


def test_a_sent_copy_gives_the_senders_other_devices_the_descriptor(net: Net) -> None:
    alice, bob = net.person("alice"), net.person("bob")
    laptop = net.linked(alice)
    here = Attachment.location(1.5, 2.5, "here")
    content = Content.attachment_message(here, now_ms=int(T0 * 1000))
    waiting = alice.engine.send(content, [bob.address], now=T0, copies=[laptop.address])
    for device in waiting:
        alice.engine.bundle_received(device, net.relay.take_bundle(bytes(device.mailbox)), now=T0)
    alice.flush()
    laptop.fetch(now=T0 + 1)
    entry = AttachmentBook(laptop.store).get(bytes(content.message_id))
    assert entry is not None
    assert entry.attachment == here
    assert entry.state == "stored"  # a location is whole in its message
    assert laptop.texts("out") == [here.summary()]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"kind": "image", "media_type": "application/pdf"}, "type_mismatch"),
        ({"kind": "voice", "media_type": "video/mp4"}, "type_mismatch"),
        ({"size": 101 * 1024 * 1024, "sealed_size": 1}, "too_large"),
        ({"size": 0}, "malformed"),
        ({"sealed_size": 999}, "bad_descriptor"),
        ({"waveform": b"\x01\x02"}, "bad_descriptor"),
        ({"thumbnail": PNG}, "bad_descriptor"),  # a document has no thumbnail
    ],
)
def test_claims_are_checked_against_the_upload_rules(changes: dict[str, object], code: str) -> None:
    with pytest.raises(AttachmentRefusedError) as caught:
        check_claim(file_attachment(**changes))
    assert caught.value.code == code


def test_a_voice_note_carries_duration_and_waveform() -> None:
    from dchat_crypto.hazmat import sealed_size

    voice = file_attachment(
        kind="voice",
        media_type="audio/ogg",
        sealed_size=sealed_size(1000),
        duration_ms=4200,
        waveform=bytes(range(0, 250, 5)),
    )
    assert check_claim(voice) == voice


@pytest.fixture
def dbs(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    with (
        open_database(tmp_path / "a.db", key=StorageKey.generate()) as sender,
        open_database(tmp_path / "b.db", key=StorageKey.generate()) as recipient,
    ):
        yield sender, recipient


def send_side(db: Database, kind: str, media_type: str, data: bytes) -> tuple[Attachment, bytes]:
    """Store, seal and describe a file as the sender does; returns the descriptor and blob."""
    record, _ = db.attachments.upload("alice", kind, media_type, io.BytesIO(data), T0, name="f")
    key, blob_id, sealed = seal_stored(record.size, db.attachments.open(record.attachment_id))
    attachment = describe(record, key, blob_id, sealed, "127.0.0.1:4000", caption="look")
    blob = b"".join(
        sealed_from(key.to_bytes(), record.size, db.attachments.open(record.attachment_id), 0)
    )
    assert len(blob) == sealed
    return attachment, blob


def test_an_image_goes_through_and_arrives_identical_with_its_thumbnail(
    dbs: tuple[Database, Database],
) -> None:
    sender, recipient = dbs
    attachment, blob = send_side(sender, "image", "image/png", PNG)
    assert (attachment.width, attachment.height) == (300, 200)
    assert attachment.thumbnail.startswith(b"\xff\xd8\xff")
    assert PNG not in blob
    record = store_received(recipient.attachments, "bob", attachment, io.BytesIO(blob), T0)
    assert recipient.attachments.read(record.attachment_id) == PNG
    assert (record.width, record.height) == (300, 200)


def test_a_resumed_upload_reseals_the_same_bytes_from_any_offset(
    dbs: tuple[Database, Database],
) -> None:
    sender, _ = dbs
    data = b"%PDF-1.4 " + os.urandom(200_000)
    attachment, blob = send_side(sender, "document", "application/pdf", data)
    (record,) = [sender.attachments.get(a) for a in _ids(sender)]
    assert record is not None
    for offset in (0, 1, 65_551, 65_552, 100_000, len(blob) - 1, len(blob)):
        chunks = sender.attachments.open(record.attachment_id)
        rest = b"".join(sealed_from(attachment.key, record.size, chunks, offset))
        assert rest == blob[offset:]
        chunks = sender.attachments.open(record.attachment_id)
        pieces = list(sealed_from(attachment.key, record.size, chunks, offset, 100_000))
        assert b"".join(pieces) == blob[offset:]
        assert all(len(p) >= 100_000 for p in pieces[:-1])


def _ids(db: Database) -> list[bytes]:
    from sqlalchemy import select

    from dchat_storage._schema import AttachmentRow

    with db._access.read("test") as conn:  # type: ignore[attr-defined]
        return [bytes(r) for r in conn.execute(select(AttachmentRow.attachment_id)).scalars()]


def test_bytes_that_lie_about_their_type_are_refused_and_nothing_is_kept(
    dbs: tuple[Database, Database],
) -> None:
    sender, recipient = dbs
    attachment, blob = send_side(sender, "document", "application/pdf", SAMPLES["application/pdf"])
    # A sender that lies: the message says PNG image, the sealed bytes are a PDF.
    lie = replace(attachment, kind="image", media_type="image/png")
    with pytest.raises(AttachmentRefusedError) as caught:
        store_received(recipient.attachments, "bob", lie, io.BytesIO(blob), T0)
    assert caught.value.code == "type_mismatch"
    assert recipient.attachments.usage("bob") == 0


def test_damaged_truncated_extended_or_foreign_blobs_are_refused(
    dbs: tuple[Database, Database],
) -> None:
    sender, recipient = dbs
    attachment, blob = send_side(sender, "document", "text/plain", b"hello " * 30_000)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 1
    other_key = replace(attachment, key=os.urandom(32))
    for description, bad in [
        ("flipped", bytes(flipped)),
        ("truncated", blob[:-1]),
        ("extended", blob + b"\x00"),
        ("empty", b""),
    ]:
        with pytest.raises(AttachmentRefusedError) as caught:
            store_received(recipient.attachments, "bob", attachment, io.BytesIO(bad), T0)
        assert caught.value.code == "bad_blob", description
    with pytest.raises(AttachmentRefusedError):
        store_received(recipient.attachments, "bob", other_key, io.BytesIO(blob), T0)
    assert recipient.attachments.usage("bob") == 0


def test_declared_dimensions_that_lie_are_refused(dbs: tuple[Database, Database]) -> None:
    sender, recipient = dbs
    attachment, blob = send_side(sender, "image", "image/png", PNG)
    lie = replace(attachment, width=30, height=20)
    with pytest.raises(AttachmentRefusedError) as caught:
        store_received(recipient.attachments, "bob", lie, io.BytesIO(blob), T0)
    assert caught.value.code == "lie"
    assert recipient.attachments.usage("bob") == 0


def test_the_recipient_applies_its_own_limits(dbs: tuple[Database, Database]) -> None:
    sender, recipient = dbs
    attachment, blob = send_side(sender, "document", "text/plain", b"x" * 5000)
    small = UploadLimits(document=4000)
    with pytest.raises(AttachmentRefusedError) as caught:
        store_received(recipient.attachments, "bob", attachment, io.BytesIO(blob), T0, small)
    assert caught.value.code == "too_large"


def test_the_opened_reader_streams_in_small_steps() -> None:
    from dchat_crypto.hazmat import FileKey, seal_file_chunks

    data = os.urandom(300_000)
    key = FileKey.generate()
    blob = b"".join(seal_file_chunks(key, len(data), [data]))
    from dchat_storage.lowlevel import blob_hasher

    hasher = blob_hasher()
    hasher.update(blob)
    attachment = file_attachment(
        blob_id=hasher.digest(), key=key.to_bytes(), size=len(data), sealed_size=len(blob)
    )
    reader = OpenedReader(io.BytesIO(blob), attachment)
    out = bytearray()
    while piece := reader.read(7000):
        assert len(piece) <= 7000
        out += piece
    assert bytes(out) == data


def test_the_keeper_runs_a_send_and_a_receive_over_two_databases(
    tmp_path: Path, dbs: tuple[Database, Database]
) -> None:
    from dchat_messaging import RequestError
    from dchat_messaging.attachments import AttachmentKeeper

    alice, bob = (AttachmentKeeper(db, piece=100_000) for db in dbs)
    data = b"%PDF-1.4 " + os.urandom(250_000)
    record = alice.store("alice", "document", "application/pdf", io.BytesIO(data), T0, "a.pdf")
    key, blob_id, sealed = alice.sealing(record, T0)
    assert alice.sealing(record, T0 + 1) == (key, blob_id, sealed)  # kept: a retry resumes
    attachment = describe(record, key, blob_id, sealed, "127.0.0.1:4000")
    blob = b"".join(alice.sealed_pieces(record, attachment.key, 0))
    with pytest.raises(RequestError):
        bob.entry(b"m" * 16)
    entry = bob.keep(b"m" * 16, AttachmentEntry(attachment))
    part = tmp_path / "blob.part"
    part.write_bytes(blob[:-1])  # one byte short: refused, and the refusal is kept
    assert bob.receive(b"m" * 16, entry, part, "bob", T0).code == "bad_blob"
    assert bob.entry(b"m" * 16).state == "refused"
    part.write_bytes(blob)
    stored = bob.receive(
        b"n" * 16, bob.keep(b"n" * 16, AttachmentEntry(attachment)), part, "bob", T0
    )
    assert stored.state == "stored"
    assert b"".join(bob.chunks(stored)) == data


def _raw(db_path: Path) -> bytes:
    """Every byte of the database's files on disk (the file, its log and shared memory)."""
    files = [db_path.with_name(db_path.name + s) for s in ("", "-wal", "-shm", "-journal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def _secrets(db_path: Path) -> list[bytes]:
    """Sealed bytes of the message row, its blind index, its file's chunks and keys."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute("SELECT payload, message_ix FROM messages").fetchall()
        rows += conn.execute("SELECT data, blob_id FROM blob_chunks").fetchall()
        rows += conn.execute("SELECT payload, blob_id FROM attachments").fetchall()
        rows += conn.execute("SELECT payload, key_ix FROM settings").fetchall()
    return [bytes(v)[:48] for row in rows for v in row if v is not None and len(v) >= 16]


def test_an_expired_message_takes_its_file_key_and_download_off_the_disk(
    tmp_path: Path, dbs: tuple[Database, Database]
) -> None:
    from dchat_messaging.attachments import AttachmentKeeper

    db, peer = dbs[0], "dc1bob"
    parts = tmp_path / "parts"
    parts.mkdir()
    keeper, mid = AttachmentKeeper(db, parts=parts), b"m" * 16
    data = b"%PDF-1.4 " + os.urandom(200_000)
    record = keeper.store("alice", "document", "application/pdf", io.BytesIO(data), T0, "a.pdf")
    key, blob_id, sealed = keeper.sealing(record, T0)
    attachment = describe(record, key, blob_id, sealed, "127.0.0.1:4000")
    db.conversations.set_timer(peer, 2.0, T0)
    assert db.messages.add(mid, "out", peer, "", T0, T0)
    keeper.sent(mid, attachment, record.attachment_id)
    assert db.messages.start_timer(mid, T0)  # bob's read receipt: counting from T0
    for name, age in ((blob_id.hex(), 0), ("abandoned", 2 * 86400), ("recent", 3600)):
        (parts / f"{name}.part").write_bytes(b"x")
        os.utime(parts / f"{name}.part", (T0 - age, T0 - age))
    path = db.path
    assert path is not None
    before = _secrets(path)
    assert before
    assert all(s in _raw(path) for s in before)  # the scan finds them while they live

    assert keeper.expire(T0 + 1) == []  # not yet; the day-old download is dropped at once
    assert sorted(p.name for p in parts.iterdir()) == [f"{blob_id.hex()}.part", "recent.part"]
    with contextlib.closing(sqlite3.connect(path)) as reader:  # a reader on the old snapshot
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchall()
        assert keeper.expire(T0 + 2) == [("127.0.0.1:4000", blob_id)]  # the relay's copy: ours
        reader.execute("COMMIT")
    assert keeper.expire(T0 + 3) == []  # nothing more to delete, but the log is emptied now
    assert db.messages.get(mid) is None
    assert keeper.book.get(mid) is None
    assert db.attachments.get(record.attachment_id) is None
    assert sorted(p.name for p in parts.iterdir()) == ["recent.part"]
    raw = _raw(path)
    assert [s.hex() for s in before if s in raw and s not in _secrets(path)] == []
    assert data[:4096] not in raw


def test_a_damaged_record_fails_the_expiry_whole_and_is_counted(
    dbs: tuple[Database, Database],
) -> None:
    """A DecodeError inside the expiry changes nothing, is counted, and never escapes."""
    from dchat_messaging.attachments import AttachmentKeeper
    from dchat_storage import EngineStore

    db, peer, mid = dbs[0], "dc1bob", b"p" * 16
    keeper, store = AttachmentKeeper(db), EngineStore(db)
    db.conversations.set_timer(peer, 2.0, T0)
    assert db.messages.add(mid, "out", peer, "", T0, T0)
    assert db.messages.start_timer(mid, T0)
    store.put_state("user.pay." + mid.hex(), b"a payment record")
    store.put_state("user.pay.pending", b"\xff not cbor")  # damaged
    assert keeper.expire(T0 + 3) == []
    assert (keeper.expiry_failures, keeper.expiry_error) == (1, "DecodeError")
    assert db.messages.get(mid) is not None  # rolled back whole: retried later
    store.put_state("user.pay.pending", canonical_encode([]))
    assert keeper.expire(T0 + 4) == []
    assert db.messages.get(mid) is None
    assert keeper.expiry_failures == 1
