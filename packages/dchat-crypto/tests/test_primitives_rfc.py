"""RFC known-answer tests for the key classes and primitive wrappers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dchat_crypto import (
    BadSignatureError,
    DecryptionError,
    InvalidKeyError,
    PrivateKey,
    PublicKey,
    SigningKey,
    VerifyKey,
    constant_time_equal,
)
from dchat_crypto.hazmat import (
    ChaCha20Poly1305Key,
    chacha20poly1305_decrypt,
    chacha20poly1305_encrypt,
    hkdf_sha256,
)


def _cases(vectors: Path, name: str) -> dict[str, Any]:
    path = vectors / "rfc_primitives" / name
    if not path.is_file():
        pytest.skip(f"RFC vector file {path} not found")
    return json.loads(path.read_text())


def test_x25519_rfc7748(vectors: Path) -> None:
    data = _cases(vectors, "rfc7748_key_cases.json")
    for case in data["cases"]:
        test = case["test"]
        private = PrivateKey.from_bytes(bytes.fromhex(test["private"]))
        shared = private.exchange(PublicKey.from_bytes(bytes.fromhex(test["public"])))
        assert shared.hex() == test["shared"]
    assert len(data["cases"]) == 2


def test_x25519_low_order_point_is_rejected() -> None:
    with pytest.raises(InvalidKeyError):
        PrivateKey.generate().exchange(PublicKey(bytes(32)))


def test_ed25519_rfc8032(vectors: Path) -> None:
    cases = [c for c in _cases(vectors, "rfc8032_section7.1_cases.json")["cases"] if "message" in c]
    assert len(cases) >= 4
    for case in cases:
        key = SigningKey.from_bytes(bytes.fromhex(case["secret_key"]))
        message = bytes.fromhex(case["message"])
        assert key.public_key.to_bytes().hex() == case["public_key"]
        signature = key.sign(message)
        assert signature.hex() == case["signature"]
        key.public_key.verify(signature, message)
        with pytest.raises(BadSignatureError):
            key.public_key.verify(signature, message + b"x")
        with pytest.raises(BadSignatureError):
            key.public_key.verify(signature[:-1], message)


def test_ed25519_verdicts_are_openssls() -> None:
    # verify takes libsodium's fast path first; its refusals must fall back to
    # OpenSSL's rules, which stay the definition of a valid signature.
    small_order_key = VerifyKey(bytes([1]) + bytes(31))  # the identity point
    identity_sig = bytes([1]) + bytes(63)  # R = identity, S = 0: valid for OpenSSL
    small_order_key.verify(identity_sig, b"any message")
    key = SigningKey.generate()
    signature = bytearray(key.sign(b"m"))
    key.public_key.verify(bytes(signature), b"m")
    signature[40] ^= 1
    with pytest.raises(BadSignatureError):
        key.public_key.verify(bytes(signature), b"m")
    with pytest.raises(BadSignatureError):
        VerifyKey(bytes(32)).verify(bytes(64), b"m")  # not a point OpenSSL accepts either


def test_hkdf_rfc5869(vectors: Path) -> None:
    cases = _cases(vectors, "rfc5869_key_cases.json")["cases"]
    assert len(cases) == 3
    for case in cases:
        test = case["test"]
        okm = hkdf_sha256(
            bytes.fromhex(test["ikm"]),
            salt=bytes.fromhex(test["salt"]),
            info=bytes.fromhex(test["info"]),
            length=test["size"],
        )
        assert okm.hex() == test["okm"]


def test_chacha20poly1305_rfc8439(vectors: Path) -> None:
    test = _cases(vectors, "rfc8439_key_cases.json")["cases"][0]["test"]
    key, nonce, aad = (bytes.fromhex(test[k]) for k in ("key", "iv", "aad"))
    msg = bytes.fromhex(test["msg"])
    sealed = chacha20poly1305_encrypt(key, nonce, msg, aad)
    assert sealed.hex() == test["ct"] + test["tag"]
    assert chacha20poly1305_decrypt(key, nonce, sealed, aad) == msg
    with pytest.raises(DecryptionError, match=r"^decryption failed$"):
        chacha20poly1305_decrypt(key, nonce, sealed, aad + b"!")


def test_a_key_set_up_once_seals_as_the_functions_do(vectors: Path) -> None:
    test = _cases(vectors, "rfc8439_key_cases.json")["cases"][0]["test"]
    key, nonce, aad = (bytes.fromhex(test[k]) for k in ("key", "iv", "aad"))
    msg = bytes.fromhex(test["msg"])
    cipher = ChaCha20Poly1305Key(key)
    for _ in range(2):  # the same object, again
        sealed = cipher.encrypt(nonce, msg, aad)
        assert sealed.hex() == test["ct"] + test["tag"]
        assert sealed == chacha20poly1305_encrypt(key, nonce, msg, aad)
        assert cipher.decrypt(nonce, sealed, aad) == msg
    with pytest.raises(DecryptionError, match=r"^decryption failed$"):
        cipher.decrypt(nonce, sealed, aad + b"!")
    with pytest.raises(DecryptionError):
        cipher.decrypt(nonce, sealed[:10], aad)
    with pytest.raises(InvalidKeyError):
        ChaCha20Poly1305Key(key[:31])
    with pytest.raises(InvalidKeyError):
        cipher.encrypt(nonce[:11], msg, aad)
    assert key.hex() not in repr(cipher)


@pytest.mark.parametrize("cls", [SigningKey, VerifyKey, PrivateKey, PublicKey])
def test_key_length_is_checked(cls: type[Any]) -> None:
    assert cls.SIZE == 32
    with pytest.raises(InvalidKeyError):
        cls.from_bytes(bytes(31))
    with pytest.raises(ValueError, match="32 bytes"):
        cls.from_bytes(bytes(33))


def test_private_repr_hides_secret_and_equality_works() -> None:
    for key in (SigningKey.generate(), PrivateKey.generate()):
        assert key.to_bytes().hex() not in repr(key)
        assert key.public_key.to_bytes().hex() in repr(key)
        clone = type(key).from_bytes(key.to_bytes())
        assert clone == key
        assert hash(clone) == hash(key)
        assert len({key, clone}) == 1
    assert PrivateKey.generate() != PrivateKey.generate()
    assert PublicKey(bytes(32)) != VerifyKey(bytes(32))


def test_constant_time_equal() -> None:
    assert constant_time_equal(b"abc", b"abc")
    assert not constant_time_equal(b"abc", b"abd")
    assert not constant_time_equal(b"abc", b"ab")
