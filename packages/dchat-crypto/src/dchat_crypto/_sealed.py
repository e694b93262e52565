"""Sealed boxes: anonymous public-key encryption to an X25519 key.

Construction (version 1)::

    eph            = fresh X25519 private key
    shared         = X25519(eph, recipient_pub)            (all-zero output rejected)
    key || nonce   = HKDF-SHA256(ikm=shared,
                                 salt=eph_pub || recipient_pub,
                                 info=b"dchat-seal-v1" || context,
                                 length=32 + 12)
    ct             = ChaCha20-Poly1305(key, nonce, plaintext, ad=0x01 || eph_pub)
    sealed         = 0x01 || eph_pub || ct                 (ct includes the 16-byte tag)

The ephemeral key is used once, so the derived nonce never repeats under a key.
Salting with both public keys binds the box to its recipient; ``context``
(e.g. ``b"envelope"``) binds it to its use, so a box made for one purpose can
never be opened as another (domain separation). The sender is anonymous: a
sender who must be known signs inside the plaintext.

Every failure to open — wrong key, wrong context, tampering, truncation, an
unknown version, a low-order ephemeral point — raises the same opaque
:class:`DecryptionError`.
"""

from __future__ import annotations

from ._errors import DecryptionError, InvalidKeyError
from ._keys import PrivateKey, PublicKey
from ._primitives import (
    AEAD_KEY_SIZE,
    AEAD_NONCE_SIZE,
    AEAD_TAG_SIZE,
    chacha20poly1305_decrypt,
    chacha20poly1305_encrypt,
    hkdf_sha256,
)

__all__ = ("SEAL_OVERHEAD", "open_sealed", "seal")

_VERSION = b"\x01"
_INFO = b"dchat-seal-v1"
_HEADER_SIZE = len(_VERSION) + PublicKey.SIZE

SEAL_OVERHEAD = _HEADER_SIZE + AEAD_TAG_SIZE
"""Bytes a sealed box adds to its plaintext (1 + 32 + 16 = 49)."""


def _derive(shared: bytes, eph_pub: bytes, recipient_pub: bytes, context: bytes) -> bytes:
    return hkdf_sha256(
        shared,
        salt=eph_pub + recipient_pub,
        info=_INFO + context,
        length=AEAD_KEY_SIZE + AEAD_NONCE_SIZE,
    )


def seal(recipient: PublicKey, plaintext: bytes, *, context: bytes = b"") -> bytes:
    """Encrypt ``plaintext`` so that only ``recipient``'s private key can open it.

    Args:
        recipient: The recipient's X25519 public key.
        plaintext: The message to encrypt.
        context: Domain-separation label; the opener must pass the same value.

    Returns:
        ``0x01 || ephemeral_public || ciphertext_with_tag``.

    Raises:
        InvalidKeyError: If ``recipient`` is a low-order point.
    """
    eph = PrivateKey.generate()
    eph_pub = eph.public_key.to_bytes()
    material = _derive(eph.exchange(recipient), eph_pub, recipient.to_bytes(), context)
    key, nonce = material[:AEAD_KEY_SIZE], material[AEAD_KEY_SIZE:]
    header = _VERSION + eph_pub
    return header + chacha20poly1305_encrypt(key, nonce, plaintext, header)


def open_sealed(recipient: PrivateKey, sealed: bytes, *, context: bytes = b"") -> bytes:
    """Decrypt a box made by :func:`seal`.

    Args:
        recipient: The recipient's X25519 private key.
        sealed: The sealed box.
        context: The domain-separation label used when sealing.

    Returns:
        The plaintext.

    Raises:
        DecryptionError: If the box cannot be opened for any reason.
    """
    sealed = bytes(sealed)
    if len(sealed) < SEAL_OVERHEAD or sealed[:1] != _VERSION:
        raise DecryptionError
    header, ciphertext = sealed[:_HEADER_SIZE], sealed[_HEADER_SIZE:]
    eph_pub = header[len(_VERSION) :]
    try:
        shared = recipient.exchange(PublicKey(eph_pub))
    except InvalidKeyError:
        raise DecryptionError from None
    material = _derive(shared, eph_pub, recipient.public_key.to_bytes(), context)
    key, nonce = material[:AEAD_KEY_SIZE], material[AEAD_KEY_SIZE:]
    return chacha20poly1305_decrypt(key, nonce, ciphertext, header)
