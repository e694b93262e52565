"""Passphrase keystore: round trip, authentication, structural checks, DoS guard."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_crypto import (
    DecryptionError,
    KdfParams,
    KeystoreFormatError,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)

SECRET = bytes(range(32))
BLOB = encrypt_with_passphrase(SECRET, "correct horse", params=KdfParams.TESTING)


def test_round_trip_str_and_bytes_passphrase() -> None:
    assert decrypt_with_passphrase(BLOB, "correct horse") == SECRET
    assert decrypt_with_passphrase(BLOB, b"correct horse") == SECRET


def test_blob_layout_is_self_describing() -> None:
    assert BLOB[:5] == b"DCKS\x01"
    assert struct.unpack(">IIB", BLOB[5:14]) == (1024, 1, 1)
    assert len(BLOB) == 42 + len(SECRET) + 16


def test_fresh_salt_and_nonce_each_time() -> None:
    other = encrypt_with_passphrase(SECRET, "correct horse", params=KdfParams.TESTING)
    assert other[14:42] != BLOB[14:42]


def test_wrong_passphrase() -> None:
    with pytest.raises(DecryptionError, match=r"^decryption failed$"):
        decrypt_with_passphrase(BLOB, "wrong horse")


def test_default_params() -> None:
    assert KdfParams(memory_kib=65536, iterations=3, lanes=1) == KdfParams.DEFAULT
    assert KdfParams(memory_kib=1024, iterations=1, lanes=1) == KdfParams.TESTING


def test_every_flipped_byte_gives_a_typed_error() -> None:
    for i in range(len(BLOB)):
        tampered = bytearray(BLOB)
        tampered[i] ^= 0x01
        with pytest.raises((DecryptionError, KeystoreFormatError)):
            decrypt_with_passphrase(bytes(tampered), "correct horse")


@pytest.mark.parametrize(
    ("memory_kib", "iterations", "lanes"),
    [(2**32 - 1, 1, 1), (1024, 65, 1), (1024, 1, 17), (1024, 0, 1), (0, 1, 1), (1024, 1, 0)],
)
def test_absurd_params_are_rejected_before_the_kdf(
    memory_kib: int, iterations: int, lanes: int
) -> None:
    blob = BLOB[:5] + struct.pack(">IIB", memory_kib, iterations, lanes) + BLOB[14:]
    start = time.monotonic()
    with pytest.raises(KeystoreFormatError):
        decrypt_with_passphrase(blob, "correct horse")
    assert time.monotonic() - start < 0.5


def test_structural_errors() -> None:
    with pytest.raises(KeystoreFormatError):
        decrypt_with_passphrase(BLOB[:57], "correct horse")
    with pytest.raises(KeystoreFormatError):
        decrypt_with_passphrase(b"XXXX" + BLOB[4:], "correct horse")
    with pytest.raises(KeystoreFormatError):
        decrypt_with_passphrase(BLOB[:4] + b"\x02" + BLOB[5:], "correct horse")
    with pytest.raises(ValueError, match="lanes"):
        KdfParams(memory_kib=1024, iterations=1, lanes=0)


def test_the_kdf_cost_is_read_from_the_header() -> None:
    assert KdfParams.of_blob(BLOB) == KdfParams.TESTING
    cheap = KdfParams(memory_kib=2048, iterations=2, lanes=1)
    assert KdfParams.of_blob(encrypt_with_passphrase(SECRET, "x", params=cheap)) == cheap


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        BLOB[:57],
        b"XXXX" + BLOB[4:],
        BLOB[:4] + b"\x02" + BLOB[5:],
        BLOB[:5] + struct.pack(">IIB", 1024, 65, 1) + BLOB[14:],
    ],
    ids=["empty", "truncated", "wrong-magic", "wrong-version", "bad-iterations"],
)
def test_no_kdf_cost_from_a_malformed_blob(blob: bytes) -> None:
    with pytest.raises(KeystoreFormatError):
        KdfParams.of_blob(blob)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120) | st.binary(min_size=1, max_size=60).map(lambda b: BLOB[:14] + b))
def test_random_bytes_only_raise_typed_errors(data: bytes) -> None:
    with pytest.raises((DecryptionError, KeystoreFormatError)):
        decrypt_with_passphrase(data, "correct horse")
