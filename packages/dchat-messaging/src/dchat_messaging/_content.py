"""What a session carries: the plaintext of one message, before padding.

Inside a ratchet message (see :mod:`._wire`) the sender writes the padded
(:func:`dchat_privacy.pad`) canonical encoding of::

    {"v": 1, "mid": message id(16), "ts": milliseconds since the epoch,
     "body": {"t": "text", "text": str} | {"t": "ctl", "kind": str, "data": bytes}
           | {"t": "att", "v": 1, "kind": str, ...} | {"t": "pay", "v": 1, ...},
     ["card": the sender's contact card],
     ["doc": the sender's identity document],
     ["peer": identity id(32)],
     ["seq": n, "lc": n],
     ["re": message id(16)], ["fwd": 1]}

``card`` travels in the first message of each session, so a recipient who
does not know the sender yet can answer (a message request); ``doc`` (the
sender's current identity document, when it has one) travels with it, so a
recipient who has not seen the document yet can check that a linked device
speaks for the identity before it accepts the session. ``peer`` marks a
*sent copy*: one of the sender's own devices telling the others what it sent
to ``peer``, so that sent messages appear on every device. A text message
carries its place in the conversation: ``seq`` counts the sending device's
text messages in this conversation (1, 2, ...; a receiver that sees 5 after 3
knows 4 is missing) and ``lc`` is a Lamport clock of the conversation (one
more than the highest it had sent or seen), by which every device shows the
conversation in the same order, whatever order envelopes arrived in. A text may
also quote another message of the conversation (``re``, a reply) or be marked
forwarded (``fwd``, nothing more: no link to where it came from); see
:mod:`._conversation` for the control kinds around texts. There is no
signature: the session authenticates the sender to the recipient and to no
one else (see ``docs/rationale.md``, "Deniable messages").

Body kinds are told apart by ``t`` (:data:`_BODIES`, one reader each); a new
kind is a new ``t`` with its own versioned map, beside the others. An
attachment (``"att"``, :mod:`._attachment`) is a person's message like a
text: its :attr:`Content.kind` is ``"text"``, its text the caption (or a
one-line summary when there is none), and :attr:`Content.attachment` the
descriptor. A payment (``"pay"``, :mod:`._payment`) is one too: its text the
note (or a summary), :attr:`Content.payment` the claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    IdentityId,
    MessageId,
    canonical_decode,
    canonical_encode,
)
from dchat_identity import ContactCard, InvalidCardError
from dchat_privacy import PaddingError, PaddingTooLargeError, pad, unpad

from ._attachment import Attachment
from ._errors import ContentError, EnvelopeRejectedError
from ._payment import Payment

__all__ = ("MAX_CONTROL", "MAX_TEXT", "Content", "check_kind")

MAX_TEXT: Final = 16_000
MAX_CONTROL: Final = 48_000
_KIND: Final = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_FIELDS: Final = frozenset(
    {"v", "mid", "ts", "body", "card", "doc", "peer", "seq", "lc", "re", "fwd"}
)
MAX_DOCUMENT: Final = 48_000
_TEXT: Final = frozenset({"t", "text"})
_CONTROL: Final = frozenset({"t", "kind", "data"})
_LIMITS: Final = DecodeLimits(max_size=65536, max_depth=3, max_items=64)
_MAX_TS: Final = 2**53


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a valid control kind.

    Raises:
        ContentError: not 1-32 of ``[a-z0-9_.-]`` starting with a letter, or ``"text"``.
    """
    if not isinstance(kind, str) or _KIND.fullmatch(kind) is None or kind == "text":
        raise ContentError("control kind must be 1-32 of [a-z0-9_.-], starting with a letter")
    return kind


@dataclass(frozen=True, slots=True)
class Content:
    """One message as both ends read it.

    Attributes:
        message_id: Unique per message; the same on every device it reaches.
        sent_at_ms: The sender's clock, milliseconds since the epoch.
        kind: ``"text"`` for a person's message, else the control kind.
        text: The text (empty for control messages).
        data: The control payload (empty for text).
        card: The sender's contact card, when it travels with the message.
        document: The sender's identity document, when it travels with the message.
        peer: For a sent copy between one identity's devices, the other party.
        seq: A text message's number among its sending device's texts in the
            conversation (from 1), if it carries one.
        lamport: A text message's Lamport clock in the conversation, if it carries one.
        reply_to: The message a text quotes (a reply), if any.
        forwarded: The text is a forwarded copy.
        attachment: The attachment a person's message carries, if any.
        payment: The payment a person's message claims, if any.
    """

    message_id: MessageId
    sent_at_ms: int
    kind: str = "text"
    text: str = ""
    data: bytes = b""
    card: ContactCard | None = None
    peer: IdentityId | None = None
    document: bytes | None = None
    seq: int | None = None
    lamport: int | None = None
    reply_to: MessageId | None = None
    forwarded: bool = False
    attachment: Attachment | None = None
    payment: Payment | None = None

    @classmethod
    def text_message(
        cls, text: str, *, now_ms: int, message_id: MessageId | None = None
    ) -> Content:
        """A person's text message.

        Raises:
            ContentError: ``text`` is empty or longer than :data:`MAX_TEXT`.
        """
        if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
            raise ContentError(f"message text must be 1-{MAX_TEXT} characters")
        return cls(message_id or MessageId.random(), now_ms, "text", text)

    @classmethod
    def attachment_message(
        cls, attachment: Attachment, *, now_ms: int, message_id: MessageId | None = None
    ) -> Content:
        """A person's message carrying ``attachment`` (its caption is the text).

        Raises:
            ContentError: the descriptor does not encode (a field out of bounds).
        """
        try:
            attachment = Attachment.from_map(attachment.to_map())
        except ValueError as exc:
            raise ContentError(f"invalid attachment: {exc}") from None
        text = attachment.caption or attachment.summary()
        mid = message_id or MessageId.random()
        return cls(mid, now_ms, "text", text, attachment=attachment)

    @classmethod
    def payment_message(cls, payment: Payment, *, now_ms: int, message_id: MessageId) -> Content:
        """A person's message carrying ``payment`` (its note is the text).

        Raises:
            ContentError: a field out of bounds.
        """
        try:
            payment = Payment.from_map(payment.to_map())
        except ValueError as exc:
            raise ContentError(f"invalid payment: {exc}") from None
        text = payment.note or payment.summary()
        return cls(message_id, now_ms, "text", text, payment=payment)

    @classmethod
    def control(
        cls, kind: str, data: bytes, *, now_ms: int, message_id: MessageId | None = None
    ) -> Content:
        """A control payload of ``kind`` for the recipient's node.

        Raises:
            ContentError: a bad kind, or ``data`` longer than :data:`MAX_CONTROL`.
        """
        check_kind(kind)
        if not isinstance(data, bytes | bytearray) or len(data) > MAX_CONTROL:
            raise ContentError(f"control payload must be at most {MAX_CONTROL} bytes")
        return cls(message_id or MessageId.random(), now_ms, kind, "", bytes(data))

    def to_padded(self) -> bytes:
        """The padded canonical encoding that a session encrypts.

        Raises:
            ContentError: the whole does not fit the largest padding bucket.
        """
        body: dict[str, object]
        if self.attachment is not None:
            body = self.attachment.to_map()
        elif self.payment is not None:
            body = self.payment.to_map()
        elif self.kind == "text":
            body = {"t": "text", "text": self.text}
        else:
            body = {"t": "ctl", "kind": self.kind, "data": self.data}
        value: dict[str, object] = {
            "v": 1,
            "mid": bytes(self.message_id),
            "ts": self.sent_at_ms,
            "body": body,
        }
        if self.card is not None:
            value["card"] = self.card.to_bytes()
        if self.document is not None:
            value["doc"] = self.document
        if self.peer is not None:
            value["peer"] = bytes(self.peer)
        if self.seq is not None and self.lamport is not None:
            value["seq"], value["lc"] = self.seq, self.lamport
        if self.reply_to is not None:
            value["re"] = bytes(self.reply_to)
        if self.forwarded:
            value["fwd"] = 1
        try:
            return pad(canonical_encode(value))
        except PaddingTooLargeError:
            raise ContentError("message (content plus sender card) is too large to send") from None

    @classmethod
    def from_padded(cls, data: bytes) -> Content:
        """Parse what a session decrypted.

        Raises:
            EnvelopeRejectedError: anything malformed (the session authenticated
                it, so this is a misbehaving peer; opaque like every opening failure).
        """
        try:
            fields = Fields(canonical_decode(unpad(data), _LIMITS), "message", _FIELDS)
            if fields.get_int("v") != 1:
                raise ValueError("version")
            raw = fields.raw("body")
            content_type = raw.get("t") if isinstance(raw, dict) else None
            reader = _BODIES.get(content_type) if isinstance(content_type, str) else None
            if reader is None:
                raise ValueError("content type")
            kind, text, payload, extra = reader(raw)
            attachment = extra if isinstance(extra, Attachment) else None
            card = None
            if fields.has("card"):
                card = ContactCard.from_bytes(fields.get_bytes("card", max_size=2048))
            peer = IdentityId(fields.get_bytes("peer", size=32)) if fields.has("peer") else None
            doc = fields.get_bytes("doc", max_size=MAX_DOCUMENT) if fields.has("doc") else None
            seq = lamport = None
            if fields.has("seq") or fields.has("lc"):
                seq, lamport = (
                    fields.get_int("seq", lo=1, hi=_MAX_TS),
                    fields.get_int("lc", hi=_MAX_TS),
                )
            reply_to = None
            if fields.has("re"):
                reply_to = MessageId(fields.get_bytes("re", size=MessageId.SIZE))
            forwarded = fields.has("fwd") and fields.get_int("fwd", lo=1, hi=1) == 1
            return cls(
                MessageId(fields.get_bytes("mid", size=MessageId.SIZE)),
                fields.get_int("ts", hi=_MAX_TS),
                kind,
                text,
                payload,
                card,
                peer,
                doc,
                seq,
                lamport,
                reply_to,
                forwarded,
                attachment,
                extra if isinstance(extra, Payment) else None,
            )
        except (DecodeError, PaddingError, InvalidCardError, ValueError):
            raise EnvelopeRejectedError from None


_Body = tuple[str, str, bytes, Attachment | Payment | None]


def _text_body(raw: object) -> _Body:
    text = Fields(raw, "body", _TEXT).get_str("text", max_len=MAX_TEXT)
    if not text:
        raise ValueError("empty text")
    return "text", text, b"", None


def _control_body(raw: object) -> _Body:
    body = Fields(raw, "body", _CONTROL)
    kind = check_kind(body.get_str("kind", max_len=32))
    return kind, "", body.get_bytes("data", max_size=MAX_CONTROL), None


def _attachment_body(raw: object) -> _Body:
    attachment = Attachment.from_map(raw)
    return "text", attachment.caption or attachment.summary(), b"", attachment


def _payment_body(raw: object) -> _Body:
    payment = Payment.from_map(raw)
    return "text", payment.note or payment.summary(), b"", payment


_BODIES: Final = {
    "text": _text_body,
    "ctl": _control_body,
    "att": _attachment_body,
    "pay": _payment_body,
}
