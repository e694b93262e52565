"""The Noise fast paths compute exactly what the plain definitions do.

CipherState keeps one AEAD object per key, HMAC/HKDF are computed from
precomputed pads, protocol names are parsed once, and fresh ephemeral keys skip
the PrivateKey wrapper. Each shortcut is checked here against the definition it
replaces, and against the security properties it must not weaken: rekey really
changes the key in use, copies stay independent, nonces are never reused,
failures stay opaque and leave the state unchanged, ephemerals stay fresh, and
low-order points are still refused.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_crypto import DecryptionError, HandshakeState, InvalidKeyError, PrivateKey
from dchat_crypto.hazmat import (
    CIPHERS,
    HASHES,
    MAX_NONCE,
    CipherFunctions,
    CipherState,
    HashFunctions,
    NoiseHandshakeError,
    NoiseProtocolNameError,
    NonceExhaustedError,
    parse_protocol_name,
)

XX = "Noise_XX_25519_ChaChaPoly_BLAKE2s"
KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))


def _reference_hkdf(hash_: HashFunctions, ck: bytes, ikm: bytes, n: int) -> list[bytes]:
    temp = hmac.new(ck, ikm, hash_.constructor).digest()
    outputs, previous = [], b""
    for i in range(1, n + 1):
        previous = hmac.new(temp, previous + bytes([i]), hash_.constructor).digest()
        outputs.append(previous)
    return outputs


# -- CipherState keeps one AEAD object per key -------------------------------------------------


@pytest.mark.parametrize("cipher", ["ChaChaPoly", "AESGCM"])
def test_ciphertexts_match_the_stateless_definition(cipher: str) -> None:
    functions = CIPHERS[cipher]
    state = CipherState(functions, KEY_A)
    for n in range(3):
        expected = functions.encrypt(KEY_A, n, b"ad", b"message %d" % n)
        assert state.encrypt_with_ad(b"ad", b"message %d" % n) == expected


@pytest.mark.parametrize("cipher", ["ChaChaPoly", "AESGCM"])
def test_rekey_replaces_the_cached_key(cipher: str) -> None:
    functions = CIPHERS[cipher]
    sender, receiver = CipherState(functions, KEY_A), CipherState(functions, KEY_A)
    receiver.decrypt_with_ad(b"", sender.encrypt_with_ad(b"", b"warm the cache"))
    sender.rekey()
    new_key = functions.rekey(KEY_A)
    ciphertext = sender.encrypt_with_ad(b"", b"after rekey")
    # Encrypted under REKEY(k) at the unchanged nonce 1, not under the cached old key.
    assert ciphertext == functions.encrypt(new_key, 1, b"", b"after rekey")
    assert ciphertext != functions.encrypt(KEY_A, 1, b"", b"after rekey")
    with pytest.raises(DecryptionError):
        receiver.decrypt_with_ad(b"", ciphertext)  # receiver still holds the old key
    receiver.rekey()
    assert receiver.decrypt_with_ad(b"", ciphertext) == b"after rekey"


def test_copies_stay_independent_across_rekey() -> None:
    original = CipherState(CIPHERS["ChaChaPoly"], KEY_A)
    original.encrypt_with_ad(b"", b"bind")
    copy = original.copy()
    copy.rekey()
    assert original.encrypt_with_ad(b"", b"x") == CIPHERS["ChaChaPoly"].encrypt(KEY_A, 1, b"", b"x")
    rekeyed = CIPHERS["ChaChaPoly"].rekey(KEY_A)
    assert copy.encrypt_with_ad(b"", b"x") == CIPHERS["ChaChaPoly"].encrypt(rekeyed, 1, b"", b"x")


@pytest.mark.parametrize("cipher", ["ChaChaPoly", "AESGCM"])
def test_failed_decryption_is_opaque_and_changes_nothing(cipher: str) -> None:
    sender, receiver = CipherState(CIPHERS[cipher], KEY_A), CipherState(CIPHERS[cipher], KEY_A)
    good = sender.encrypt_with_ad(b"ad", b"payload")
    for bad in (good[:-1] + bytes([good[-1] ^ 1]), b"", b"short", good + b"x"):
        with pytest.raises(DecryptionError) as caught:
            receiver.decrypt_with_ad(b"ad", bad)
        assert str(caught.value) == "decryption failed"
        assert caught.value.__cause__ is None
        assert receiver.nonce == 0
    with pytest.raises(DecryptionError):
        receiver.decrypt_with_ad(b"other ad", good)
    assert receiver.decrypt_with_ad(b"ad", good) == b"payload"
    assert receiver.nonce == 1


def test_nonces_advance_and_exhaust_with_a_cached_key() -> None:
    state = CipherState(CIPHERS["ChaChaPoly"], KEY_A)
    first, second = state.encrypt_with_ad(b"", b"m"), state.encrypt_with_ad(b"", b"m")
    assert first != second  # never the same nonce twice
    state.set_nonce(MAX_NONCE - 1)
    state.encrypt_with_ad(b"", b"last")
    with pytest.raises(NonceExhaustedError):
        state.encrypt_with_ad(b"", b"one too many")
    with pytest.raises(NonceExhaustedError):
        state.decrypt_with_ad(b"", first)
    assert state.nonce == MAX_NONCE


@pytest.mark.parametrize("cipher", ["ChaChaPoly", "AESGCM"])
def test_bad_key_length_is_still_a_key_error(cipher: str) -> None:
    state = CipherState(CIPHERS[cipher], bytes(16))
    with pytest.raises(InvalidKeyError):
        state.encrypt_with_ad(b"", b"x")
    with pytest.raises(InvalidKeyError):
        state.decrypt_with_ad(b"", bytes(32))


def test_other_cipher_functions_are_still_called() -> None:
    calls: list[str] = []
    chacha = CIPHERS["ChaChaPoly"]

    def encrypt(k: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
        calls.append("encrypt")
        return chacha.encrypt_fn(k, nonce, plaintext, ad)

    def decrypt(k: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
        calls.append("decrypt")
        return chacha.decrypt_fn(k, nonce, ciphertext, ad)

    custom = CipherFunctions("Custom", encrypt, decrypt, "little")
    ciphertext = CipherState(custom, KEY_A).encrypt_with_ad(b"", b"x")
    assert CipherState(custom, KEY_A).decrypt_with_ad(b"", ciphertext) == b"x"
    assert calls == ["encrypt", "decrypt"]
    assert ciphertext == chacha.encrypt(KEY_A, 0, b"", b"x")


# -- HMAC and HKDF from precomputed pads ---------------------------------------------------------


@settings(max_examples=200)
@given(
    name=st.sampled_from(sorted(HASHES)),
    key=st.binary(max_size=300),
    data=st.binary(max_size=300),
)
def test_hmac_matches_the_hmac_module(name: str, key: bytes, data: bytes) -> None:
    hash_ = HASHES[name]
    assert hash_.hmac(key, data) == hmac.new(key, data, hash_.constructor).digest()


@settings(max_examples=100)
@given(
    name=st.sampled_from(sorted(HASHES)),
    ck=st.binary(min_size=32, max_size=64),
    ikm=st.binary(max_size=100),
    n=st.integers(min_value=0, max_value=3),
)
def test_hkdf_matches_the_definition(name: str, ck: bytes, ikm: bytes, n: int) -> None:
    hash_ = HASHES[name]
    assert hash_.hkdf(ck, ikm, n) == _reference_hkdf(hash_, ck, ikm, n)


def test_unknown_hash_constructors_still_work() -> None:
    sha3 = HashFunctions("SHA3", hashlib.sha3_256, 32)
    assert sha3.hmac(KEY_A, b"x") == hmac.new(KEY_A, b"x", hashlib.sha3_256).digest()
    assert sha3.hkdf(KEY_A, KEY_B, 2) == _reference_hkdf(sha3, KEY_A, KEY_B, 2)


# -- handshakes: parsing once, fresh ephemerals, low-order points ---------------------------------


def test_cached_parsing_still_rejects_bad_names_every_time() -> None:
    assert parse_protocol_name(XX) == parse_protocol_name(XX)
    assert parse_protocol_name(XX).messages == (("e",), ("e", "ee", "s", "es"), ("s", "se"))
    for bad in ("Noise_XX_25519_ChaChaPoly_MD5", ["not", "a", "name"], None, b"bytes"):
        for _ in range(2):
            with pytest.raises(NoiseProtocolNameError):
                parse_protocol_name(bad)  # type: ignore[arg-type]


def test_every_handshake_uses_a_fresh_ephemeral_key() -> None:
    static = PrivateKey.generate()
    firsts = {HandshakeState(XX, initiator=True, static=static).write_message() for _ in range(20)}
    assert len(firsts) == 20


@pytest.mark.parametrize("low_order", [bytes(32), (1).to_bytes(32, "little")])
def test_low_order_remote_ephemeral_is_still_refused(low_order: bytes) -> None:
    responder = HandshakeState(XX, initiator=False, static=PrivateKey.generate())
    responder.read_message(low_order)  # parsing alone does no DH
    with pytest.raises(InvalidKeyError):
        responder.write_message()  # ee with a low-order point
    initiator = HandshakeState(XX, initiator=True, static=PrivateKey.generate())
    initiator.write_message()
    with pytest.raises(NoiseHandshakeError):
        initiator.read_message(low_order + bytes(48 + 16))
