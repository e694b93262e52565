"""Sealed envelopes: what a relay stores and forwards.

Outside, an envelope shows only the recipient device's mailbox id and a ciphertext::

    envelope = canonical({"v": 1, "mb": mailbox_id(32), "ct": sealed})
    reply    = canonical({"v": 1, "mb": mailbox_id(32), "ct": body(4096), "rp": reply_id(16)})

What ``sealed`` holds is described in :mod:`._wire`. A *reply* envelope is
what a mailbox relay files for an answer that came under one of the mailbox
owner's reply blocks (protocol §45): ``ct`` is the onion body, ``rp`` the id
the owner looks the block up by (:mod:`._reply_blocks`).
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
_OUTER: Final = frozenset({"v", "mb", "ct", "rp"})
_OUTER_LIMITS: Final = DecodeLimits(max_size=MAX_ENVELOPE, max_depth=1, max_items=8)


@dataclass(frozen=True, slots=True)
class SealedEnvelope:
    """The relay-visible form of a message."""

    mailbox: MailboxId
    ciphertext: bytes
    reply_id: bytes | None = None
    """Set on a reply envelope: the id of the reply block it came under."""

    def to_bytes(self) -> bytes:
        """Canonical wire encoding."""
        value = {"v": 1, "mb": bytes(self.mailbox), "ct": self.ciphertext}
        if self.reply_id is not None:
            value["rp"] = self.reply_id
        return canonical_encode(value)

    @staticmethod
    def onion_reply(mailbox: bytes, reply_id: bytes, body: bytes) -> bytes:
        """The reply envelope a mailbox relay files (a relay host's ``wrap_reply``)."""
        return SealedEnvelope(MailboxId(mailbox), body, reply_id).to_bytes()

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
            reply_id = fields.get_bytes("rp", size=16) if fields.has("rp") else None
            mailbox = MailboxId(fields.get_bytes("mb", size=32))
            return cls(mailbox, fields.get_bytes("ct"), reply_id)
        except (DecodeError, ValueError) as exc:
            if isinstance(exc, MalformedEnvelopeError):
                raise
            raise MalformedEnvelopeError(f"malformed envelope: {exc}") from None

    @classmethod
    def mailbox_of(cls, data: bytes) -> bytes | None:
        """The mailbox untrusted envelope bytes are addressed to, or ``None`` if malformed.

        What a relay needs to file an envelope (``RelayServer``'s ``envelope_mailbox``).
        """
        try:
            return bytes(cls.from_bytes(data).mailbox)
        except MalformedEnvelopeError:
            return None
