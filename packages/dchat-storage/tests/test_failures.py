"""Failure modes: a full disk and a corrupted file give typed errors and lose nothing.

Disk full is simulated two ways. ``PRAGMA max_page_count`` caps the database
size per connection, so SQLite fails a write with SQLITE_FULL exactly as it does
when ``write()`` returns ENOSPC: the same error path, on every machine. As root
with mount rights, a real 1 MiB tmpfs is filled too (skipped otherwise).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, select, text, update

from dchat_storage import (
    Database,
    StorageCorruptError,
    StorageFullError,
    StorageUnavailableError,
    open_database,
)
from dchat_storage._schema import Message
from dchat_storage.lowlevel import StorageKey


def _cap_pages(db: Database, extra: int) -> None:
    """Limit the file to its current size plus ``extra`` pages, on every connection."""
    engine = db._access._engine
    with engine.connect() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar_one()
    engine.dispose()

    def cap(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + extra}")

    event.listen(engine, "connect", cap)
    db._uncap = lambda: (event.remove(engine, "connect", cap), engine.dispose())  # type: ignore[attr-defined]


def _fill_until_full(db: Database) -> list[bytes]:
    acked = []
    for n in range(100_000):
        mid = n.to_bytes(8, "big")
        try:
            db.messages.add(mid, "in", "id-bob", os.urandom(1500).hex(), 0.0, float(n))
        except StorageFullError:
            return acked
        acked.append(mid)
    pytest.fail("the database never filled up")


@pytest.mark.parametrize("sealed", [False, True])
def test_full_database_raises_typed_error_and_keeps_acked_writes(
    db_path: Path, sealed: bool
) -> None:
    key = StorageKey.generate() if sealed else None
    with open_database(db_path, key=key) as db:
        db.contacts.add("bob", "id-bob", b"card", 0.0)
        _cap_pages(db, extra=40)
        acked = _fill_until_full(db)
        assert len(acked) > 10
        with pytest.raises(StorageFullError) as caught:
            db.settings.set("still", b"full" * 2000, 1.0)
        assert isinstance(caught.value, StorageUnavailableError)
        stored = [m.message_id for m in db.messages.list(limit=100_000)]
        assert stored == acked  # every acknowledged write, nothing half-written
        assert db.integrity_check() == "ok"
        db._uncap()  # type: ignore[attr-defined]
        db.messages.add(b"after", "in", "id-bob", "space again", 0.0, 1e9)  # it recovers
    with open_database(db_path, key=key) as db:
        assert len(db.messages.list(limit=100_000)) == len(acked) + 1
        assert db.contacts.get_by_name("bob") is not None


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs root to mount a tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_real_full_disk(tiny_disk: Path) -> None:
    path = tiny_disk / "node.db"
    db = open_database(path)
    try:
        acked = []

        def fill() -> None:
            for n in range(10_000):
                db.mailboxes.put(b"box", os.urandom(4096), float(n))
                acked.append(n)

        with pytest.raises(StorageFullError):
            fill()
        assert len(acked) > 10
        assert db.mailboxes.count(b"box") == len(acked)
        assert db.integrity_check() == "ok"
    finally:
        db.close()


def _corrupt_middle(path: Path, seed: int) -> None:
    """Overwrite 256 bytes of stored records in the middle third of the file.

    The window is chosen where bytes are in use: flipping bytes of a page's free
    space (zeros) changes no data, so no checker could, or should, notice it.
    """
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    while True:
        start = rng.randrange(len(data) // 3, 2 * len(data) // 3)
        if data[start : start + 256].count(0) < 16:
            break
    data[start : start + 256] = bytes(rng.randrange(256) for _ in range(256))
    path.write_bytes(bytes(data))


def _read_everything(path: Path, key: StorageKey | None) -> str:
    with open_database(path, key=key) as db:
        db.messages.list(limit=100_000)
        for n in range(400):
            db.messages.get(n.to_bytes(8, "big"))
        return db.integrity_check()


@pytest.mark.parametrize("seed", range(6))
def test_corrupted_file_is_reported_and_not_overwritten(db_path: Path, seed: int) -> None:
    key = StorageKey.generate()
    with open_database(db_path, key=key) as db:
        for n in range(400):
            db.messages.add(n.to_bytes(8, "big"), "in", "id-bob", f"message {n} " * 20, 0, n)
    _corrupt_middle(db_path, seed)
    damaged = db_path.read_bytes()
    try:
        report = _read_everything(db_path, key)
    except StorageCorruptError:
        report = "raised"
    assert report != "ok"
    assert db_path.read_bytes() == damaged  # nothing "repaired" or rewritten


def test_tampered_record_is_a_corruption_error(db_path: Path) -> None:
    key = StorageKey.generate()
    with open_database(db_path, key=key) as db:
        db.messages.add(b"m1", "in", "id-bob", "original", 0.0, 0.0)
        db.messages.add(b"m2", "in", "id-bob", "other", 0.0, 1.0)
        with db._access.write("swap payloads") as conn:
            payloads = conn.execute(select(Message.payload).order_by(Message.seq)).scalars().all()
            conn.execute(update(Message).where(Message.seq == 1).values(payload=payloads[1]))
        with pytest.raises(StorageCorruptError):
            db.messages.get(b"m1")
        assert db.messages.get(b"m2") is not None  # the rest stays readable


def test_a_schema_damaged_into_bad_utf8_is_a_corruption_error(db_path: Path) -> None:
    """SQLite names the damaged schema's bytes in its message; Python could not decode it.

    CI run found it: a random corruption of the middle of the file hit the
    schema and opening raised ``UnicodeDecodeError`` instead of a typed error.
    """
    with open_database(db_path, key=StorageKey.generate()):
        pass
    data = bytearray(db_path.read_bytes())
    at = data.index(b"CREATE INDEX")
    on = data.index(b" ON ", at) + 4
    name_end = data.index(b" ", on)
    data[on:name_end] = b"\x94" * (name_end - on)  # the indexed table's name, as bad UTF-8
    db_path.write_bytes(bytes(data))
    damaged = db_path.read_bytes()
    with pytest.raises(StorageCorruptError):
        open_database(db_path, key=StorageKey.generate())
    assert db_path.read_bytes() == damaged
