"""Errors of prekey bundles and asynchronous session setup.

They extend the package tree; an init that fails authentication for *any*
cryptographic reason stays the package-wide opaque :class:`DecryptionError`::

    DchatCryptoError
    ├── DecryptionError(PeerError)                    SessionInit failed authentication (opaque)
    └── SessionSetupError
        ├── PrekeyArgumentError(CallerError, ValueError)  bad count/lifetime/time, unknown own id,
        │                                                 a key that does not match the prekeys
        ├── InvalidBundleError(PeerError, ValueError)     bundle malformed, forged or expired
        ├── InvalidSessionInitError(PeerError, ValueError)  SessionInit malformed, or names a
        │                                                 prekey we do not hold (any more)
        ├── PrekeyReusedError(PeerError)                  one-time prekey already consumed, or
        │                                                 the same SessionInit accepted before
        └── InvalidPrekeyStateError(PeerError, ValueError)  stored PrekeySecrets bytes malformed
"""

from __future__ import annotations

from dchat_core import CallerError, PeerError

from ._errors import DchatCryptoError

__all__ = (
    "InvalidBundleError",
    "InvalidPrekeyStateError",
    "InvalidSessionInitError",
    "PrekeyArgumentError",
    "PrekeyReusedError",
    "SessionSetupError",
)


class SessionSetupError(DchatCryptoError):
    """Root of the prekey and session-setup errors other than :class:`DecryptionError`."""


class PrekeyArgumentError(SessionSetupError, CallerError, ValueError):
    """A caller passed a bad count, lifetime, time, prekey id or mismatching key."""


class InvalidBundleError(SessionSetupError, PeerError, ValueError):
    """A prekey bundle is malformed, badly signed, expired or holds an unusable key."""


class InvalidSessionInitError(SessionSetupError, PeerError, ValueError):
    """A SessionInit is malformed or names a prekey that is unknown or retired."""


class PrekeyReusedError(SessionSetupError, PeerError):
    """A one-time prekey was already consumed, or this SessionInit was accepted before."""


class InvalidPrekeyStateError(SessionSetupError, PeerError, ValueError):
    """Serialized :class:`PrekeySecrets` are malformed or inconsistent."""
