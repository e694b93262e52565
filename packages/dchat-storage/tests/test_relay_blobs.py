"""The relay's blob store: resumable, verified uploads, ranged reads, quotas, lifetimes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_storage import InvalidArgumentError, NotFoundError, QuotaExceededError, StorageFullError
from dchat_storage.lowlevel import (
    BlobHashMismatchError,
    BlobLimits,
    BlobOffsetError,
    RelayBlobStore,
    UploadTooLargeError,
    blob_hasher,
)

if TYPE_CHECKING:
    from pathlib import Path

ALICE, BOB = b"a" * 32, b"b" * 32
PIECE = 512 * 1024


def blob_id(data: bytes) -> bytes:
    hasher = blob_hasher()
    hasher.update(data)
    digest: bytes = hasher.digest()
    return digest


def upload(store: RelayBlobStore, data: bytes, owner: bytes = ALICE, now: float = 0.0) -> bytes:
    ident = blob_id(data)
    held = store.begin(owner, ident, len(data), now)
    while held < len(data):
        held = store.write(owner, ident, held, data[held : held + PIECE], now)
    return ident


def download(store: RelayBlobStore, ident: bytes, piece: int = PIECE) -> bytes:
    out, size = b"", None
    while size is None or len(out) < size:
        data, size = store.read(ident, len(out), piece)
        out += data
    return out


def test_an_upload_round_trips_and_is_kept_across_a_restart(tmp_path: Path) -> None:
    data = os.urandom(3 * PIECE + 17)
    store = RelayBlobStore(tmp_path)
    ident = upload(store, data)
    assert download(store, ident, 100_000) == data
    again = RelayBlobStore(tmp_path)
    assert again.state(ident) is not None
    assert download(again, ident) == data
    assert again.begin(ALICE, ident, len(data), 1.0) == len(data)  # already complete


def test_an_interrupted_upload_resumes_where_the_relay_stopped(tmp_path: Path) -> None:
    data = os.urandom(2 * PIECE + 5)
    ident = blob_id(data)
    store = RelayBlobStore(tmp_path)
    assert store.begin(ALICE, ident, len(data), 0.0) == 0
    store.write(ALICE, ident, 0, data[:PIECE], 0.0)
    with pytest.raises(NotFoundError):
        store.read(ident, 0, 10)  # not served before it is complete
    resumed = RelayBlobStore(tmp_path)  # the relay restarted meanwhile
    held = resumed.begin(ALICE, ident, len(data), 1.0)
    assert held == PIECE
    with pytest.raises(BlobOffsetError) as caught:
        resumed.write(ALICE, ident, 0, data[:PIECE], 1.0)
    assert caught.value.held == PIECE
    while held < len(data):
        held = resumed.write(ALICE, ident, held, data[held : held + PIECE], 1.0)
    assert download(resumed, ident) == data


def test_bytes_that_do_not_hash_to_the_id_are_refused_and_dropped(tmp_path: Path) -> None:
    store = RelayBlobStore(tmp_path)
    ident = blob_id(b"the real bytes")
    store.begin(ALICE, ident, 14, 0.0)
    with pytest.raises(BlobHashMismatchError):
        store.write(ALICE, ident, 0, b"a forged bytes", 0.0)
    assert store.state(ident) is None
    assert list(tmp_path.iterdir()) == []


def test_only_the_uploader_writes_and_pieces_stay_within_the_size(tmp_path: Path) -> None:
    store = RelayBlobStore(tmp_path)
    ident = blob_id(b"0123456789")
    store.begin(ALICE, ident, 10, 0.0)
    with pytest.raises(NotFoundError):
        store.write(BOB, ident, 0, b"0123456789", 0.0)
    with pytest.raises(InvalidArgumentError):
        store.write(ALICE, ident, 0, b"0123456789X", 0.0)
    with pytest.raises(InvalidArgumentError):
        store.write(ALICE, ident, 0, b"", 0.0)
    with pytest.raises(InvalidArgumentError):
        store.begin(ALICE, ident, 11, 0.0)  # the same id with another size
    with pytest.raises(InvalidArgumentError):
        store.begin(ALICE, b"short", 10, 0.0)


def test_size_limit_mailbox_quota_and_disk_budget(tmp_path: Path) -> None:
    limits = BlobLimits(max_size=100, mailbox_quota=150, disk_budget=250)
    store = RelayBlobStore(tmp_path, limits)
    with pytest.raises(UploadTooLargeError):
        store.begin(ALICE, os.urandom(32), 101, 0.0)
    upload(store, os.urandom(100))
    with pytest.raises(QuotaExceededError):
        store.begin(ALICE, os.urandom(32), 51, 0.0)
    store.begin(ALICE, os.urandom(32), 50, 0.0)  # a partial upload counts too
    upload(store, os.urandom(100), BOB)
    with pytest.raises(StorageFullError):
        store.begin(BOB, os.urandom(32), 1, 0.0)
    assert store.usage(ALICE) == 150
    assert store.total() == 250


def test_blobs_expire_and_abandoned_uploads_go_sooner(tmp_path: Path) -> None:
    store = RelayBlobStore(tmp_path, BlobLimits(ttl=100.0, partial_ttl=10.0))
    kept = upload(store, b"kept for a while")
    partial = blob_id(b"never finished")
    store.begin(ALICE, partial, 14, 0.0)
    assert store.sweep(50.0) == 1
    assert store.state(partial) is None
    assert store.state(kept) is not None
    store.begin(ALICE, os.urandom(32), 1, 200.0)  # begin sweeps lazily (once a minute)
    assert store.state(kept) is None
    assert not (tmp_path / (kept.hex() + ".blob")).exists()


def test_a_crash_between_the_metadata_and_the_data_leaves_nothing_served(tmp_path: Path) -> None:
    (tmp_path / ("ab" * 32 + ".part")).write_bytes(b"orphan data")
    (tmp_path / ("cd" * 32 + ".json")).write_text("{not json")
    (tmp_path / ("ef" * 32 + ".tmp")).write_text("{}")
    store = RelayBlobStore(tmp_path)
    assert store.total() == 0
    assert list(tmp_path.iterdir()) == []


def test_reads_are_bounded(tmp_path: Path) -> None:
    store = RelayBlobStore(tmp_path)
    ident = upload(store, b"x" * 10)
    assert store.read(ident, 10, 5) == (b"", 10)
    with pytest.raises(InvalidArgumentError):
        store.read(ident, 11, 5)
    with pytest.raises(InvalidArgumentError):
        store.read(ident, 0, PIECE + 1)
    with pytest.raises(NotFoundError):
        store.read(os.urandom(32), 0, 5)
    assert store.delete(ALICE, ident)
    with pytest.raises(NotFoundError):
        store.read(ident, 0, 5)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.lists(st.integers(1, 700), min_size=1))
def test_any_piece_sizes_give_back_the_same_bytes(data: bytes, cuts: list[int]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        store = RelayBlobStore(directory)
        ident = blob_id(data)
        held, i = store.begin(ALICE, ident, len(data), 0.0), 0
        while held < len(data):
            held = store.write(ALICE, ident, held, data[held : held + cuts[i % len(cuts)]], 0.0)
            i += 1
        assert download(store, ident, 333) == data
