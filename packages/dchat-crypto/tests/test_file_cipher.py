"""The attachment file cipher: round trips, padding, and one opaque error for any damage."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_crypto import DecryptionError, InvalidKeyError
from dchat_crypto.hazmat import (
    FILE_CHUNK,
    SEALED_CHUNK,
    FileDecryptor,
    FileEncryptor,
    FileKey,
    FileSizeError,
    open_file_chunks,
    padded_size,
    seal_file_chunks,
    sealed_size,
)

KEY = FileKey(bytes(range(32)))
# Sizes around the chunk boundaries (the 8-byte header shifts them) and a few larger.
SIZES = st.one_of(
    st.integers(0, 300),
    st.integers(FILE_CHUNK - 40, FILE_CHUNK + 40),
    st.integers(2 * FILE_CHUNK - 20, 2 * FILE_CHUNK + 20),
    st.integers(0, 5 * FILE_CHUNK),
)
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def seal(data: bytes, key: FileKey = KEY, piece: int = 10_000) -> bytes:
    pieces = (data[i : i + piece] for i in range(0, len(data), piece))
    return b"".join(seal_file_chunks(key, len(data), pieces))


def open_all(sealed: bytes, key: FileKey = KEY, expected: int | None = None) -> bytes:
    return b"".join(open_file_chunks(key, [sealed], expected))


def content(size: int) -> bytes:
    return (bytes(range(251)) * (size // 251 + 1))[:size]


@SLOW
@given(SIZES, st.integers(1, 3 * FILE_CHUNK))
def test_round_trip_whatever_the_piece_sizes(size: int, piece: int) -> None:
    data = content(size)
    sealed = seal(data, piece=piece)
    assert len(sealed) == sealed_size(size)
    pieces = [sealed[i : i + piece] for i in range(0, len(sealed), piece)]
    assert b"".join(open_file_chunks(KEY, pieces, size)) == data


@given(st.integers(0, 2**40))
def test_padding_hides_all_but_a_few_bits_and_costs_at_most_an_eighth(size: int) -> None:
    total = padded_size(size)
    assert 8 + size <= total <= (8 + size) * 1.125 + 1
    # Padmé keeps only the top floor(log2(E)) + 2 bits (E = floor(log2(n))): O(log log n).
    significant = total.bit_length() - (total & -total).bit_length() + 1
    assert significant <= (total.bit_length() - 1).bit_length() + 1


def test_sizes_in_one_padding_class_seal_to_the_same_length() -> None:
    # Near 100 MiB the sealed size moves in steps of 2 MiB, so neighbours look alike.
    base = 101 * 1024 * 1024
    assert sealed_size(base - 1000) == sealed_size(base + 1000)
    assert sealed_size(base) - base < base // 50


def test_a_fresh_key_each_time_and_a_key_is_never_shown() -> None:
    assert FileKey.generate() != FileKey.generate()
    assert "secret" in repr(KEY)
    assert KEY.to_bytes().hex() not in repr(KEY)
    assert FileKey.from_bytes(KEY.to_bytes()) == KEY
    with pytest.raises(InvalidKeyError):
        FileKey(b"short")


def test_sealing_is_deterministic_under_one_key_so_an_upload_can_resume() -> None:
    data = content(3 * FILE_CHUNK)
    assert seal(data, piece=7) == seal(data, piece=FILE_CHUNK)
    assert seal(data) != seal(data, FileKey.generate())


def test_the_sealed_bytes_hold_no_plaintext() -> None:
    data = b"attack at dawn " * 10_000
    sealed = seal(data)
    assert b"attack at dawn" not in sealed


def test_feeding_more_or_fewer_bytes_than_declared_is_a_caller_error() -> None:
    encryptor = FileEncryptor(KEY, 10)
    with pytest.raises(FileSizeError):
        encryptor.feed(bytes(11))
    with pytest.raises(FileSizeError):
        list(FileEncryptor(KEY, 10).finish())
    with pytest.raises(FileSizeError):
        FileEncryptor(KEY, -1)


SEALED = seal(content(2 * FILE_CHUNK + 500))


@given(st.integers(0, len(SEALED) - 1), st.integers(1, 255))
def test_any_flipped_byte_is_refused(position: int, flip: int) -> None:
    damaged = bytearray(SEALED)
    damaged[position] ^= flip
    with pytest.raises(DecryptionError, match=r"^decryption failed$"):
        open_all(bytes(damaged))


@given(st.integers(0, len(SEALED) - 1))
def test_any_truncation_is_refused(length: int) -> None:
    with pytest.raises(DecryptionError):
        open_all(SEALED[:length])


@given(st.binary(min_size=1, max_size=SEALED_CHUNK + 1))
def test_any_extension_is_refused(extra: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_all(SEALED + extra)


def test_reordered_chunks_are_refused() -> None:
    chunks = [SEALED[i : i + SEALED_CHUNK] for i in range(0, len(SEALED), SEALED_CHUNK)]
    assert len(chunks) == 3
    for order in ([1, 0, 2], [0, 2, 1], [0, 0, 2], [0, 1, 1, 2]):
        with pytest.raises(DecryptionError):
            open_all(b"".join(chunks[i] for i in order))


def test_dropping_whole_chunks_at_the_end_is_refused() -> None:
    with pytest.raises(DecryptionError):
        open_all(SEALED[: 2 * SEALED_CHUNK])


def test_a_wrong_key_or_a_wrong_declared_size_is_refused() -> None:
    with pytest.raises(DecryptionError):
        open_all(SEALED, FileKey.generate())
    with pytest.raises(DecryptionError):
        open_all(SEALED, expected=2 * FILE_CHUNK + 499)
    assert len(open_all(SEALED, expected=2 * FILE_CHUNK + 500)) == 2 * FILE_CHUNK + 500


def test_a_failed_decryptor_stays_failed() -> None:
    decryptor = FileDecryptor(FileKey.generate())
    with pytest.raises(DecryptionError):
        decryptor.feed(SEALED)
    with pytest.raises(DecryptionError):
        decryptor.feed(b"")
    with pytest.raises(DecryptionError):
        decryptor.finish()


def test_the_empty_file_round_trips_and_nothing_is_not_a_file() -> None:
    assert open_all(seal(b"")) == b""
    with pytest.raises(DecryptionError):
        open_all(b"")


def test_memory_stays_at_a_chunk_or_two_while_streaming() -> None:
    encryptor = FileEncryptor(KEY, 40 * FILE_CHUNK)
    decryptor = FileDecryptor(KEY, 40 * FILE_CHUNK)
    piece = bytes(FILE_CHUNK // 4)
    opened = 0
    for _ in range(160):
        opened += len(decryptor.feed(encryptor.feed(piece)))
        assert len(encryptor._buf) <= FILE_CHUNK
        assert len(decryptor._buf) <= 2 * SEALED_CHUNK
    for sealed in encryptor.finish():
        opened += len(decryptor.feed(sealed))
    opened += len(decryptor.finish())
    assert opened == 40 * FILE_CHUNK
