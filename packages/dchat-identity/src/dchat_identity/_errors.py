"""Errors of :mod:`dchat_identity`.

::

    DchatIdentityError(DchatError)
    ├── InvalidCardError(PeerError, ValueError)      a contact card is malformed or forged
    └── KeystoreError(CallerError, ValueError)       an identity keystore cannot be unlocked
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError

__all__ = ("DchatIdentityError", "InvalidCardError", "KeystoreError")


class DchatIdentityError(DchatError):
    """Root of the errors raised by :mod:`dchat_identity`."""


class InvalidCardError(DchatIdentityError, PeerError, ValueError):
    """A contact card is malformed, or its signature does not verify."""


class KeystoreError(DchatIdentityError, CallerError, ValueError):
    """An identity keystore is malformed, or the passphrase is wrong (one opaque error)."""
