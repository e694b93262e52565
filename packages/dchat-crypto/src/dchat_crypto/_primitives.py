"""Small primitive helpers: constant-time comparison, HKDF and AEAD wrappers.

The AEAD wrappers translate every ``cryptography`` failure into the single
opaque :class:`DecryptionError`, so that no foreign exception (and no hint of
which check failed) escapes a public API.

:func:`reusable_aead` serves hot paths (the Noise ``CipherState``) that use one
key for many messages: building a ``cryptography`` AEAD object costs about as
much as sealing 1 KiB, so those callers keep one object per key and translate
:data:`AEAD_FAILURES` exactly as the wrappers below do.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._errors import DecryptionError, InvalidKeyError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "AEAD_FAILURES",
    "AEAD_KEY_SIZE",
    "AEAD_NONCE_SIZE",
    "AEAD_TAG_SIZE",
    "ChaCha20Poly1305Key",
    "aesgcm_decrypt",
    "aesgcm_encrypt",
    "chacha20poly1305_decrypt",
    "chacha20poly1305_encrypt",
    "constant_time_equal",
    "hkdf_sha256",
    "reusable_aead",
)

AEAD_KEY_SIZE = 32
AEAD_NONCE_SIZE = 12
AEAD_TAG_SIZE = 16

AEAD_FAILURES: Final = (InvalidTag, ValueError, OverflowError)
"""What a ``cryptography`` AEAD may raise on bad input; callers map it to DecryptionError."""

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
    except AEAD_FAILURES:
        raise DecryptionError from None


class ChaCha20Poly1305Key:
    """ChaCha20-Poly1305 under one long-lived key, set up once for many messages.

    Gives exactly what :func:`chacha20poly1305_encrypt` and
    :func:`chacha20poly1305_decrypt` give for the same key (the same bytes, the
    same :class:`DecryptionError`), without building the ``cryptography`` object
    again for every message. For keys that seal many values (a storage subkey);
    a key used once gains nothing from it. The key is never shown (``repr``).

    Raises:
        InvalidKeyError: If ``key`` is not 32 bytes.
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != AEAD_KEY_SIZE:
            raise InvalidKeyError(f"AEAD key must be {AEAD_KEY_SIZE} bytes")
        self._aead = ChaCha20Poly1305(bytes(key))

    def encrypt(self, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
        """Encrypt; returns ciphertext || 16-byte tag."""
        if len(nonce) != AEAD_NONCE_SIZE:
            raise InvalidKeyError(f"AEAD nonce must be {AEAD_NONCE_SIZE} bytes")
        return self._aead.encrypt(nonce, plaintext, ad)

    def decrypt(self, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
        """Decrypt; raises :class:`DecryptionError` on any failure."""
        if len(nonce) != AEAD_NONCE_SIZE:
            raise InvalidKeyError(f"AEAD nonce must be {AEAD_NONCE_SIZE} bytes")
        try:
            return self._aead.decrypt(nonce, ciphertext, ad)
        except AEAD_FAILURES:
            raise DecryptionError from None

    def __repr__(self) -> str:
        return "<ChaCha20Poly1305Key>"


def aesgcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """Encrypt with AES-256-GCM; returns ciphertext || 16-byte tag."""
    _check_key_nonce(key, nonce)
    return AESGCM(key).encrypt(nonce, plaintext, ad)


def aesgcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """Decrypt AES-256-GCM; raises :class:`DecryptionError` on any failure."""
    _check_key_nonce(key, nonce)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, ad)
    except AEAD_FAILURES:
        raise DecryptionError from None


def reusable_aead(
    encrypt_fn: Callable[..., bytes], decrypt_fn: Callable[..., bytes], key: bytes
) -> ChaCha20Poly1305 | AESGCM | None:
    """A ``cryptography`` AEAD object for ``key``, if the functions are one of our pairs.

    The object is what the wrappers would build on every call; callers reuse it
    for as long as the key is unchanged, and must translate :data:`AEAD_FAILURES`
    on decryption into :class:`DecryptionError` as the wrappers do. Returns
    ``None`` for any other functions, whose callers must keep calling them.

    Raises:
        InvalidKeyError: If ``key`` is not 32 bytes (as the wrappers do).
    """
    # Identity, not equality: only our own wrappers are known to be exactly "build
    # this object, call it" (an arbitrary callable might not even be hashable).
    if encrypt_fn is chacha20poly1305_encrypt and decrypt_fn is chacha20poly1305_decrypt:
        cls: type[ChaCha20Poly1305 | AESGCM] = ChaCha20Poly1305
    elif encrypt_fn is aesgcm_encrypt and decrypt_fn is aesgcm_decrypt:
        cls = AESGCM
    else:
        return None
    if len(key) != AEAD_KEY_SIZE:
        raise InvalidKeyError(f"AEAD key must be {AEAD_KEY_SIZE} bytes")
    return cls(key)
