"""Sealed envelopes: what a relay stores and forwards.

Outside, an envelope shows only the recipient device's mailbox id and a ciphertext::

    envelope = canonical({"v": 1, "mb": mailbox_id(32), "ct": sealed})

What ``sealed`` holds is described in :mod:`._wire`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    MailboxId,
    canonical_decode,
    canonical_encode,
)

from ._errors import MalformedEnvelopeError

__all__ = ("MAX_ENVELOPE", "SealedEnvelope")

MAX_ENVELOPE: Final = 72_000
_OUTER: Final = frozenset({"v", "mb", "ct"})
_OUTER_LIMITS: Final = DecodeLimits(max_size=MAX_ENVELOPE, max_depth=1, max_items=8)


@dataclass(frozen=True, slots=True)
class SealedEnvelope:
    """The relay-visible form of a message."""

    mailbox: MailboxId
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        """Canonical wire encoding."""
        return canonical_encode({"v": 1, "mb": bytes(self.mailbox), "ct": self.ciphertext})

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedEnvelope:
        """Parse untrusted envelope bytes.

        Raises:
            MalformedEnvelopeError: not a well-formed, version-1 envelope within limits.
        """
        try:
            fields = Fields(canonical_decode(data, _OUTER_LIMITS), "envelope", _OUTER)
            if fields.get_int("v") != 1:
                raise MalformedEnvelopeError("unsupported envelope version")
            return cls(MailboxId(fields.get_bytes("mb", size=32)), fields.get_bytes("ct"))
        except (DecodeError, ValueError) as exc:
            if isinstance(exc, MalformedEnvelopeError):
                raise
            raise MalformedEnvelopeError(f"malformed envelope: {exc}") from None

    @staticmethod
    def mailbox_of(data: bytes) -> bytes | None:
        """The mailbox envelope bytes are addressed to, or ``None`` if malformed (for a relay)."""
        try:
            return bytes(SealedEnvelope.from_bytes(data).mailbox)
        except MalformedEnvelopeError:
            return None
