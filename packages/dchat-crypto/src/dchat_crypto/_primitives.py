"""Small primitive helpers: constant-time comparison, HKDF and AEAD wrappers.

The AEAD wrappers translate every ``cryptography`` failure into the single
opaque :class:`DecryptionError`, so that no foreign exception (and no hint of
which check failed) escapes a public API.
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._errors import DecryptionError, InvalidKeyError

__all__ = (
    "AEAD_KEY_SIZE",
    "AEAD_NONCE_SIZE",
    "AEAD_TAG_SIZE",
    "aesgcm_decrypt",
    "aesgcm_encrypt",
    "chacha20poly1305_decrypt",
    "chacha20poly1305_encrypt",
    "constant_time_equal",
    "hkdf_sha256",
)

AEAD_KEY_SIZE = 32
AEAD_NONCE_SIZE = 12
AEAD_TAG_SIZE = 16

# RFC 5869: output is limited to 255 hash blocks.
_HKDF_SHA256_MAX = 255 * 32


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time independent of where they differ.

    Args:
        a: First value.
        b: Second value.

    Returns:
        True if the values are equal.
    """
    return hmac.compare_digest(a, b)


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """Derive ``length`` bytes with HKDF-SHA256 (RFC 5869).

    Args:
        ikm: Input keying material.
        salt: Salt (may be empty, which RFC 5869 treats as ``HashLen`` zeros).
        info: Context and application specific information.
        length: Number of output bytes, 1 to 8160.

    Returns:
        The output keying material.

    Raises:
        ValueError: If ``length`` is out of range.
    """
    if not 0 < length <= _HKDF_SHA256_MAX:
        raise ValueError(f"HKDF-SHA256 length must be in 1..{_HKDF_SHA256_MAX}")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _check_key_nonce(key: bytes, nonce: bytes) -> None:
    if len(key) != AEAD_KEY_SIZE:
        raise InvalidKeyError(f"AEAD key must be {AEAD_KEY_SIZE} bytes")
    if len(nonce) != AEAD_NONCE_SIZE:
        raise InvalidKeyError(f"AEAD nonce must be {AEAD_NONCE_SIZE} bytes")


def chacha20poly1305_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """Encrypt with ChaCha20-Poly1305 (RFC 8439); returns ciphertext || 16-byte tag."""
    _check_key_nonce(key, nonce)
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, ad)


def chacha20poly1305_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """Decrypt ChaCha20-Poly1305; raises :class:`DecryptionError` on any failure."""
    _check_key_nonce(key, nonce)
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, ad)
    except (InvalidTag, ValueError, OverflowError):
        raise DecryptionError from None


def aesgcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """Encrypt with AES-256-GCM; returns ciphertext || 16-byte tag."""
    _check_key_nonce(key, nonce)
    return AESGCM(key).encrypt(nonce, plaintext, ad)


def aesgcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """Decrypt AES-256-GCM; raises :class:`DecryptionError` on any failure."""
    _check_key_nonce(key, nonce)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, ad)
    except (InvalidTag, ValueError, OverflowError):
        raise DecryptionError from None
