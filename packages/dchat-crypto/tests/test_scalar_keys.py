"""Scalar signing keys sign standard Ed25519; the group steps refuse bad points."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st
from nacl.bindings import crypto_core_ed25519_add, crypto_sign_open

from dchat_crypto import BadSignatureError, InvalidKeyError
from dchat_crypto.hazmat import (
    ScalarSigningKey,
    ed25519_add,
    ed25519_base_mul,
    ed25519_mul,
    ed25519_point_ok,
    ed25519_scalar_from_hash,
)

L = 2**252 + 27742317777372353535851937790883648493


def _key(seed: bytes = b"seed") -> ScalarSigningKey:
    return ScalarSigningKey.from_seed(seed, b"test")


@given(seed=st.binary(min_size=1, max_size=40), tweak=st.binary(max_size=40), msg=st.binary())
def test_tweaked_keys_sign_what_every_ed25519_verifier_accepts(
    seed: bytes, tweak: bytes, msg: bytes
) -> None:
    key = _key(seed).tweaked(ed25519_scalar_from_hash(tweak))
    public = key.public_key.to_bytes()
    signature = key.sign(msg)
    key.public_key.verify(signature, msg)  # cryptography's verifier
    Ed25519PublicKey.from_public_bytes(public).verify(signature, msg)
    assert crypto_sign_open(signature + msg, public) == msg  # libsodium's, strict


def test_the_tweaked_public_key_is_the_public_sum() -> None:
    key, tweak = _key(), ed25519_scalar_from_hash(b"t")
    expected = ed25519_add(key.public_key.to_bytes(), ed25519_base_mul(tweak))
    assert key.tweaked(tweak).public_key.to_bytes() == expected


def test_signatures_bind_message_and_key() -> None:
    key = _key()
    signature = key.sign(b"pay 5")
    with pytest.raises(BadSignatureError):
        key.public_key.verify(signature, b"pay 6")
    with pytest.raises(BadSignatureError):
        _key(b"other").public_key.verify(signature, b"pay 5")
    assert key.sign(b"pay 5") == signature  # deterministic nonce


def test_round_trip_and_bad_encodings() -> None:
    key = _key()
    assert ScalarSigningKey.from_bytes(key.to_bytes()).public_key == key.public_key
    assert "seed" not in repr(key)
    with pytest.raises(InvalidKeyError):
        ScalarSigningKey.from_bytes(b"\x01" * 63)
    with pytest.raises(InvalidKeyError):
        ScalarSigningKey(bytes(32), bytes(32))  # zero
    with pytest.raises(InvalidKeyError):
        ScalarSigningKey(L.to_bytes(32, "little"), bytes(32))  # not reduced


def test_bad_points_are_typed_errors() -> None:
    identity = (1).to_bytes(32, "little")
    order_two = (2**255 - 20).to_bytes(32, "little")  # (0, -1), small order
    s = ed25519_scalar_from_hash(b"s")
    for point in (bytes(32), identity, order_two, b"\xff" * 32, b"short"):
        assert not ed25519_point_ok(point)
        with pytest.raises(InvalidKeyError):
            ed25519_mul(s, point)
        with pytest.raises(InvalidKeyError):
            ed25519_add(point, ed25519_base_mul(s))


def test_a_point_with_a_small_order_component_is_refused() -> None:
    point = ed25519_base_mul(ed25519_scalar_from_hash(b"r"))
    shifted = crypto_core_ed25519_add(point, bytes(32))  # plus a point of order 4
    assert not ed25519_point_ok(shifted)
    with pytest.raises(InvalidKeyError):
        ed25519_mul(ed25519_scalar_from_hash(b"s"), shifted)


def test_diffie_hellman_commutes() -> None:
    a, b = ed25519_scalar_from_hash(b"a"), ed25519_scalar_from_hash(b"b")
    assert ed25519_mul(a, ed25519_base_mul(b)) == ed25519_mul(b, ed25519_base_mul(a))
