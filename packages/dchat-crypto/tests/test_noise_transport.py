"""NoiseTransport: limits, failed decryption, rekey, nonce exhaustion."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from dchat_crypto import DecryptionError, HandshakeState
from dchat_crypto.hazmat import (
    CIPHERS,
    MAX_NONCE,
    MessageTooLargeError,
    NoiseTransport,
    NonceExhaustedError,
)
from dchat_testing import hostile_bytes

NN = "Noise_NN_25519_ChaChaPoly_BLAKE2s"


def _transports(name: str = NN) -> tuple[NoiseTransport, NoiseTransport]:
    init = HandshakeState(name, initiator=True)
    resp = HandshakeState(name, initiator=False)
    resp.read_message(init.write_message())
    init.read_message(resp.write_message())
    return init.split(), resp.split()


def test_both_directions_with_ad() -> None:
    a, b = _transports()
    assert b.decrypt(a.encrypt(b"ping", b"ad"), b"ad") == b"ping"
    assert a.decrypt(b.encrypt(b"pong")) == b"pong"
    with pytest.raises(DecryptionError):
        a.decrypt(b.encrypt(b"x", b"ad1"), b"ad2")
    assert a.handshake_hash == b.handshake_hash


def test_size_limits() -> None:
    a, b = _transports()
    assert NoiseTransport.MAX_MESSAGE == 65535
    assert NoiseTransport.MAX_PLAINTEXT == 65519
    big = a.encrypt(bytes(NoiseTransport.MAX_PLAINTEXT))
    assert len(big) == 65535
    assert b.decrypt(big) == bytes(NoiseTransport.MAX_PLAINTEXT)
    with pytest.raises(MessageTooLargeError):
        a.encrypt(bytes(NoiseTransport.MAX_PLAINTEXT + 1))
    with pytest.raises(DecryptionError):
        b.decrypt(bytes(65536))


def test_failed_decrypt_does_not_advance_nonce() -> None:
    a, b = _transports()
    first = a.encrypt(b"one")
    with pytest.raises(DecryptionError):
        b.decrypt(first[:-1] + bytes([first[-1] ^ 1]))
    assert b.recv_cipher is not None
    assert b.recv_cipher.nonce == 0
    assert b.decrypt(first) == b"one"
    with pytest.raises(DecryptionError):
        b.decrypt(first)  # replay: nonce moved on


@settings(max_examples=100)
@given(hostile_bytes(max_size=300))
def test_random_bytes_give_decryption_error_and_state_survives(data: bytes) -> None:
    a, b = _transports()
    with pytest.raises(DecryptionError):
        b.decrypt(data)
    assert b.decrypt(a.encrypt(b"still fine")) == b"still fine"


@pytest.mark.parametrize("cipher", ["ChaChaPoly", "AESGCM"])
def test_rekey_matches_spec_and_both_sides(cipher: str) -> None:
    a, b = _transports(f"Noise_NN_25519_{cipher}_SHA256")
    assert a.send_cipher is not None
    key_before = a.send_cipher._k
    assert key_before is not None
    a.rekey_send()
    expected = CIPHERS[cipher].encrypt(key_before, MAX_NONCE, b"", bytes(32))[:32]
    assert a.send_cipher._k == expected
    message = a.encrypt(b"after rekey")
    with pytest.raises(DecryptionError):
        b.decrypt(message)
    b.rekey_recv()
    assert b.decrypt(message) == b"after rekey"
    assert a.send_cipher.nonce == 1  # rekey does not reset the nonce


def test_nonce_exhaustion() -> None:
    a, b = _transports()
    assert a.send_cipher is not None
    assert b.recv_cipher is not None
    a.send_cipher.set_nonce(MAX_NONCE - 1)
    b.recv_cipher.set_nonce(MAX_NONCE - 1)
    assert b.decrypt(a.encrypt(b"last")) == b"last"
    with pytest.raises(NonceExhaustedError):
        a.encrypt(b"one too many")
    with pytest.raises(NonceExhaustedError):
        b.decrypt(bytes(32))
