"""Sealed boxes: round trip, tamper resistance, domain separation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from dchat_crypto import DecryptionError, PrivateKey, open_sealed, seal
from dchat_testing import hostile_bytes

RECIPIENT = PrivateKey.generate()


def test_round_trip_with_context() -> None:
    box = seal(RECIPIENT.public_key, b"hello", context=b"envelope")
    assert len(box) == 1 + 32 + len(b"hello") + 16
    assert box[0] == 1
    assert open_sealed(RECIPIENT, box, context=b"envelope") == b"hello"


def test_two_seals_of_the_same_plaintext_differ() -> None:
    assert seal(RECIPIENT.public_key, b"same") != seal(RECIPIENT.public_key, b"same")


def test_wrong_key_fails() -> None:
    box = seal(RECIPIENT.public_key, b"secret")
    with pytest.raises(DecryptionError, match=r"^decryption failed$"):
        open_sealed(PrivateKey.generate(), box)


def test_wrong_context_fails() -> None:
    box = seal(RECIPIENT.public_key, b"secret", context=b"a")
    with pytest.raises(DecryptionError):
        open_sealed(RECIPIENT, box, context=b"b")
    with pytest.raises(DecryptionError):
        open_sealed(RECIPIENT, box)


def test_every_flipped_byte_fails() -> None:
    box = seal(RECIPIENT.public_key, b"tamper-evident", context=b"c")
    for i in range(len(box)):
        tampered = bytearray(box)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionError):
            open_sealed(RECIPIENT, bytes(tampered), context=b"c")


def test_every_truncation_fails() -> None:
    box = seal(RECIPIENT.public_key, b"short")
    for length in range(len(box)):
        with pytest.raises(DecryptionError):
            open_sealed(RECIPIENT, box[:length])


def test_low_order_ephemeral_fails_opaquely() -> None:
    box = bytearray(seal(RECIPIENT.public_key, b"x"))
    box[1:33] = bytes(32)
    with pytest.raises(DecryptionError):
        open_sealed(RECIPIENT, bytes(box))


@settings(max_examples=200)
@given(hostile_bytes(max_size=200))
def test_random_bytes_only_raise_decryption_error(data: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_sealed(RECIPIENT, data)
