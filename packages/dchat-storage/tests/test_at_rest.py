"""Encryption at rest: nothing readable about messages, contacts or keys on disk.

Each test writes known plaintexts and ids through the repositories, then scans
every byte of the database file, its WAL and its shared-memory file. The same
scan over a clear database finds them, which shows the scan can fail.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from dchat_crypto import KdfParams
from dchat_storage import Database, LockedError, open_database
from dchat_storage.lowlevel import StorageKey
from dchat_storage.testing import media_samples

SECRETS = {
    "body": "meet me at the old lighthouse at nine",
    "contact": "Zanzibar Quuxley",
    "peer": "dchat1peeridentityzq8x7w6v5u4t3s2r1",
    "own": "dchat1ownidentityaa9b8c7d6e5f4g3h2",
    "setting": "favourite-colour-ultramarine",
    "device": "Grandmothers-Tablet",
    "filename": "tax-return-2026.pdf",
    "relay": "relay.secret-host.example:7400",
    "event": "lantern-signal-from-the-event-log",
}
MESSAGE_ID = bytes.fromhex("5eed" * 8)
KEYSTORE = b"KEYSTORE-BLOB-" + bytes(range(32))
PDF = b"%PDF-1.7\nCONFIDENTIAL-PDF-CONTENT " * 200


def _fill(db: Database) -> None:
    db.identity.save(SECRETS["own"], KEYSTORE, b"own-card-" + SECRETS["own"].encode(), 1.0)
    db.contacts.add(SECRETS["contact"], SECRETS["peer"], SECRETS["peer"].encode(), 2.0)
    db.conversations.create(SECRETS["peer"], 2.0, title=SECRETS["contact"], disappear_after=60)
    db.messages.add(MESSAGE_ID, "in", SECRETS["peer"], SECRETS["body"], 3.0, 3.0)
    db.messages.add(b"out-" + MESSAGE_ID, "out", SECRETS["peer"], SECRETS["body"] + "!", 4.0, 4.0)
    db.outbox.enqueue(b"out-" + MESSAGE_ID, SECRETS["relay"], b"mailbox-id", b"envelope", 4.0)
    db.settings.set(SECRETS["setting"], SECRETS["setting"].encode(), 5.0)
    db.devices.add(SECRETS["own"], b"device-one", SECRETS["device"], b"cert", 6.0)
    db.events.append("request", {"identity_id": SECRETS["peer"], "note": SECRETS["event"]}, 8.0)
    db.attachments.upload(
        SECRETS["own"],
        "document",
        "application/pdf",
        io.BytesIO(PDF),
        7.0,
        name=SECRETS["filename"],
    )


def _needles() -> dict[str, bytes]:
    found = {name: value.encode() for name, value in SECRETS.items()}
    found |= {"message id": MESSAGE_ID, "keystore": KEYSTORE, "pdf": b"CONFIDENTIAL-PDF-CONTENT"}
    return found


def _files(path: Path) -> list[Path]:
    names = (path.name, path.name + "-wal", path.name + "-shm", path.name + "-journal")
    return [path.with_name(name) for name in names if path.with_name(name).exists()]


def scan(path: Path) -> set[str]:
    """Names of the needles present anywhere in the database's files."""
    blobs = [f.read_bytes() for f in _files(path)]
    return {name for name, needle in _needles().items() if any(needle in b for b in blobs)}


@pytest.fixture
def keep_open(db_path: Path) -> Iterator[list[Database]]:
    opened: list[Database] = []
    yield opened
    for database in opened:
        database.close()


def test_clear_database_shows_the_plaintexts(db_path: Path) -> None:
    with open_database(db_path) as db:
        _fill(db)
    assert scan(db_path) == set(_needles())  # so the scan below can fail


def test_sealed_database_files_hold_no_plaintext_or_ids(
    db_path: Path, keep_open: list[Database]
) -> None:
    db = open_database(db_path, passphrase="pass", kdf_params=KdfParams.TESTING)
    keep_open.append(db)
    _fill(db)
    # While open: the WAL and shared-memory files are there and full of fresh pages.
    assert db_path.with_name(db_path.name + "-wal").stat().st_size > 0
    assert scan(db_path) == set()
    db.close()
    assert scan(db_path) == set()
    with open_database(db_path, passphrase="pass") as again:
        assert again.messages.get(MESSAGE_ID) is not None
        assert again.contacts.get_by_name(SECRETS["contact"]) is not None


def test_sealing_an_existing_clear_database_leaves_no_trace(db_path: Path) -> None:
    with open_database(db_path) as db:
        _fill(db)
    with open_database(db_path, passphrase="pass", kdf_params=KdfParams.TESTING) as db:
        assert db.encrypted
        record = db.messages.get(MESSAGE_ID)
        assert record is not None
        assert record.body == SECRETS["body"]
        assert [c.name for c in db.contacts.list()] == [SECRETS["contact"]]
        assert db.attachments.usage(SECRETS["own"]) == len(PDF)
    assert scan(db_path) == set()


def test_wrong_or_missing_passphrase_is_refused(db_path: Path) -> None:
    open_database(db_path, passphrase="right", kdf_params=KdfParams.TESTING).close()
    before = db_path.read_bytes()
    messages = set()
    for kwargs in ({"passphrase": "wrong"}, {}, {"key": StorageKey.generate()}):
        with pytest.raises(LockedError) as caught:
            open_database(db_path, **kwargs)  # type: ignore[arg-type]
        messages.add(type(caught.value))
    assert messages == {LockedError}
    assert db_path.read_bytes() == before


def test_a_raw_key_works_without_a_passphrase(db_path: Path) -> None:
    key = StorageKey.generate()
    with open_database(db_path, key=key) as db:
        db.settings.set("k", b"v", 1.0)
    with open_database(db_path, key=key) as db:
        assert db.settings.get("k") == b"v"
        assert db.encrypted


def test_sample_media_leave_no_trace(db_path: Path) -> None:
    with open_database(db_path, key=StorageKey.generate()) as db:
        pdf = media_samples()["application/pdf"]
        db.attachments.upload("id", "document", "application/pdf", io.BytesIO(pdf), 1.0)
    assert all(b"/Type /Catalog" not in f.read_bytes() for f in _files(db_path))


# Stored capitalised: the folded form below is what the search index would hold in clear.
MARKER = "Quokkazebraphant"


def _marked(db: Database) -> None:
    for n in range(20):
        db.messages.add(bytes([n]) * 16, "in", SECRETS["peer"], f"ask {MARKER} about it", n, n)


def _holds_marker(path: Path) -> bool:
    folded = MARKER.casefold().encode()
    return any(folded in f.read_bytes() for f in _files(path))


def test_the_search_index_holds_no_words_at_rest(db_path: Path, tmp_path: Path) -> None:
    clear_path = tmp_path / "clear.sqlite3"
    with open_database(clear_path) as clear:  # the scan can fail: a clear index holds the word
        _marked(clear)
        clear.search.rebuild()
    assert _holds_marker(clear_path)
    with open_database(db_path, key=StorageKey.generate()) as db:
        _marked(db)
        db.search.rebuild()
        assert db.search.count() == 4 * 20
        assert len(db.search.candidates(MARKER.upper(), limit=100)) == 20
        assert _holds_marker(db_path) is False  # open: WAL and shared memory too
    assert _holds_marker(db_path) is False


def test_sealing_a_clear_database_drops_its_clear_index(db_path: Path) -> None:
    with open_database(db_path) as db:
        _marked(db)
        db.search.rebuild()
    key = StorageKey.generate()
    with open_database(db_path, key=key) as db:
        assert db.search.ready is False
        assert db.search.count() == 0
    assert _holds_marker(db_path) is False
    with open_database(db_path, key=key) as db:
        assert db.search.rebuild() == 20
        assert len(db.search.candidates(MARKER, limit=100)) == 20
    assert _holds_marker(db_path) is False
