"""Prekey bundles as a relay holds them: sealed so that only the device's contacts can read.

A signed bundle names its owner's identity key; stored in the clear it would
tell the relay who owns the mailbox. So the owner stores each bundle as::

    wrapped = nonce(12) || ChaCha20-Poly1305(key, nonce, bundle, ad)
    key     = HKDF-SHA256(ikm=device key(32), salt=mailbox(32),
                          info="dchat-bundle-wrap-v1", length=32)
    ad      = "dchat-bundle-v1" 0x00 || mailbox(32)

Whoever can write to the device (they hold its contact card, or the identity
document that lists it) knows the device key and opens the bundle; the relay,
which knows only the mailbox, cannot. This hides, and does not authenticate:
the bundle's own Ed25519 signature does that after unwrapping.
"""

from __future__ import annotations

import os
from typing import Final

from dchat_crypto import DecryptionError
from dchat_crypto.hazmat import chacha20poly1305_decrypt, chacha20poly1305_encrypt, hkdf_sha256

from ._errors import BundleRejectedError

__all__ = ("unwrap_bundle", "wrap_bundle")

_INFO: Final = b"dchat-bundle-wrap-v1"
_AD: Final = b"dchat-bundle-v1\x00"
_NONCE: Final = 12


def _key(device_key: bytes, mailbox: bytes) -> bytes:
    return hkdf_sha256(device_key, salt=mailbox, info=_INFO, length=32)


def wrap_bundle(bundle: bytes, *, device_key: bytes, mailbox: bytes) -> bytes:
    """Seal a signed bundle for the relay of ``mailbox``."""
    nonce = os.urandom(_NONCE)
    return nonce + chacha20poly1305_encrypt(_key(device_key, mailbox), nonce, bundle, _AD + mailbox)


def unwrap_bundle(wrapped: bytes, *, device_key: bytes, mailbox: bytes) -> bytes:
    """Open what the relay served for the device ``device_key`` at ``mailbox``.

    Raises:
        BundleRejectedError: it does not open (tampered, or not this device's).
    """
    if len(wrapped) < _NONCE + 16:
        raise BundleRejectedError("the served prekey bundle is truncated")
    nonce, sealed = wrapped[:_NONCE], wrapped[_NONCE:]
    try:
        return chacha20poly1305_decrypt(_key(device_key, mailbox), nonce, sealed, _AD + mailbox)
    except DecryptionError:
        raise BundleRejectedError("the served prekey bundle does not open") from None
