"""Errors raised by the BLS12-381 signature API.

They join the package tree under :class:`DchatCryptoError`; failed verification
reuses the package-wide opaque :class:`BadSignatureError`::

    DchatCryptoError
    ├── BadSignatureError(PeerError)            a BLS (or Ed25519) signature did not verify (opaque)
    ├── InvalidKeyError(CallerError, ValueError)
    │   └── BlsSecretKeyError(BlsError)         secret key 0 or >= r, wrong length, seed < 32 bytes
    └── BlsError
        ├── BlsSecretKeyError                   (see above)
        ├── BlsEncodingError(PeerError, ValueError)   bytes are not a valid point for their use
        └── BlsUsageError(CallerError, ValueError)    nothing to aggregate, or an argument not bytes

A malformed encoding is a public fact anyone can check, so
:class:`BlsEncodingError` may say what is wrong with the bytes; whether a
well-formed signature verifies is answered only by the message-less
:class:`BadSignatureError`.
"""

from __future__ import annotations

from dchat_core import CallerError, PeerError

from ._errors import DchatCryptoError, InvalidKeyError

__all__ = ("BlsEncodingError", "BlsError", "BlsSecretKeyError", "BlsUsageError")


class BlsError(DchatCryptoError):
    """Root of the BLS12-381 errors (verification failures are :class:`BadSignatureError`)."""


class BlsSecretKeyError(BlsError, InvalidKeyError):
    """A BLS secret key is zero, not below the group order or not 32 bytes; or a seed is short."""


class BlsEncodingError(BlsError, PeerError, ValueError):
    """Bytes are not a canonical, valid point for their use.

    Raised for a wrong length, bad flag bits, a coordinate not below the field
    modulus, a point off the curve or outside the prime-order subgroup, and for
    the point at infinity used as a public key.
    """


class BlsUsageError(BlsError, CallerError, ValueError):
    """The BLS API was called wrongly: an empty list to aggregate, or an argument not bytes."""
