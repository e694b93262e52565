"""Symmetric authenticated encryption for records shared among one person's devices.

ChaCha20-Poly1305 (from :mod:`dchat_crypto.hazmat`) under a per-message key::

    salt(24 random bytes)
    subkey || nonce = HKDF-SHA256(ikm=key, salt=salt, info=b"dchat-aead-v1" || label, 44)
    box = salt || ChaCha20-Poly1305(subkey, nonce, plaintext, ad)

A fresh subkey per message means a long-lived shared key (the sync key) never
meets the 96-bit random-nonce collision bound; ``label`` separates uses.
"""

from __future__ import annotations

from dchat_crypto import DecryptionError
from dchat_crypto.hazmat import chacha20poly1305_decrypt, chacha20poly1305_encrypt, hkdf_sha256

from ._errors import ForgedRecordError
from ._records import Rng, default_rng

__all__ = ("AEAD_OVERHEAD", "open_box", "seal_box")

_SALT = 24
AEAD_OVERHEAD = _SALT + 16


def _subkey(key: bytes, salt: bytes, label: bytes) -> tuple[bytes, bytes]:
    material = hkdf_sha256(key, salt=salt, info=b"dchat-aead-v1" + label, length=44)
    return material[:32], material[32:]


def seal_box(
    key: bytes, plaintext: bytes, *, label: bytes, ad: bytes = b"", rng: Rng = default_rng
) -> bytes:
    """Encrypt and authenticate ``plaintext`` (and ``ad``) under the 32-byte ``key``."""
    salt = rng(_SALT)
    subkey, nonce = _subkey(key, salt, label)
    return salt + chacha20poly1305_encrypt(subkey, nonce, plaintext, ad)


def open_box(key: bytes, box: bytes, *, label: bytes, ad: bytes = b"") -> bytes:
    """Decrypt a :func:`seal_box` box.

    Raises:
        ForgedRecordError: wrong key, label or ad, tampered or truncated (opaque).
    """
    if not isinstance(box, bytes) or len(box) < AEAD_OVERHEAD:
        raise ForgedRecordError
    subkey, nonce = _subkey(key, box[:_SALT], label)
    try:
        return chacha20poly1305_decrypt(subkey, nonce, box[_SALT:], ad)
    except DecryptionError:
        raise ForgedRecordError from None
