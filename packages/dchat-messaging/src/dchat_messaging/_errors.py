"""Errors of :mod:`dchat_messaging`.

::

    DchatMessagingError(DchatError)
    ├── MalformedEnvelopeError(PeerError, ValueError)   the outer envelope cannot be parsed
    ├── EnvelopeRejectedError(PeerError, ValueError)    opening failed (one opaque error:
    │                                                   decryption, signature, recipient, content)
    └── ContentError(CallerError, ValueError)           a message the caller built is invalid
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError

__all__ = (
    "ContentError",
    "DchatMessagingError",
    "EnvelopeRejectedError",
    "MalformedEnvelopeError",
)


class DchatMessagingError(DchatError):
    """Root of the errors raised by :mod:`dchat_messaging`."""


class MalformedEnvelopeError(DchatMessagingError, PeerError, ValueError):
    """The outer envelope bytes are not a valid envelope."""


class EnvelopeRejectedError(DchatMessagingError, PeerError, ValueError):
    """An envelope could not be opened and verified. Deliberately says no more."""

    def __init__(self) -> None:
        super().__init__("envelope rejected")


class ContentError(DchatMessagingError, CallerError, ValueError):
    """The message content given by the caller is invalid (e.g. too long)."""
