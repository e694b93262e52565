"""Sealed envelopes: what a relay stores and forwards.

Outside, an envelope shows only the recipient's mailbox id and a ciphertext::

    envelope = canonical({"v": 1, "mb": mailbox_id(32), "ct": sealed})

``sealed`` is a sealed box (see :func:`dchat_crypto.seal`) to the recipient's
encryption key, with the mailbox id bound in as context, of the padded
(:func:`dchat_privacy.pad`) canonical encoding of::

    {"v": 1, "from": sender identity key(32), "to": recipient id(32),
     "mid": message id(16), "ts": milliseconds since epoch,
     "body": {"t": "text", "text": str} | {"t": "ctl", "kind": str, "data": bytes},
     "card": sender card bytes (optional),
     "sig": Ed25519 over b"dchat-msg-v1\\x00" || canonical(all fields but sig)}

The sender's identity and signature travel inside the ciphertext, so a relay
learns neither who wrote the message nor anything but its padded size. The
signature covers the recipient id, so an envelope cannot be re-sealed to someone
else as if the sender had written to them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    IdentityId,
    MailboxId,
    MessageId,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import (
    BadSignatureError,
    DecryptionError,
    InvalidKeyError,
    VerifyKey,
    open_sealed,
    seal,
)
from dchat_identity import ContactCard, Identity, InvalidCardError
from dchat_privacy import PaddingError, PaddingTooLargeError, pad, unpad

from ._errors import ContentError, EnvelopeRejectedError, MalformedEnvelopeError

__all__ = (
    "MAX_CONTROL",
    "MAX_ENVELOPE",
    "MAX_TEXT",
    "OpenedMessage",
    "SealedEnvelope",
    "open_envelope",
    "seal_control",
    "seal_message",
)

MAX_TEXT = 16_000
MAX_ENVELOPE = 70_000
MAX_CONTROL = 48_000
_KIND = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_SEAL_CONTEXT = b"dchat-envelope-v1\x00"
_SIG_DOMAIN = b"dchat-msg-v1\x00"
_OUTER = frozenset({"v", "mb", "ct"})
_INNER = frozenset({"v", "from", "to", "mid", "ts", "body", "card", "sig"})
_TEXT_BODY = frozenset({"t", "text"})
_CONTROL_BODY = frozenset({"t", "kind", "data"})
_OUTER_LIMITS = DecodeLimits(max_size=MAX_ENVELOPE, max_depth=1, max_items=8)
_INNER_LIMITS = DecodeLimits(max_size=65536, max_depth=3, max_items=64)


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


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    """A verified message, as the recipient reads it."""

    message_id: MessageId
    sender: IdentityId
    sender_card: ContactCard | None
    recipient: IdentityId
    sent_at_ms: int
    text: str
    kind: str = "text"
    """``"text"`` for a person's message, else the control kind (``text`` is empty)."""
    data: bytes = b""
    """The control payload (empty for text)."""


def seal_message(
    sender: Identity,
    recipient: ContactCard,
    text: str,
    *,
    now_ms: int,
    message_id: MessageId | None = None,
    sender_card: ContactCard | None = None,
) -> tuple[MessageId, SealedEnvelope]:
    """Sign ``text`` as ``sender`` and seal it to ``recipient``'s mailbox.

    Raises:
        ContentError: the text is empty or longer than :data:`MAX_TEXT`, or the
            encoded message (text and sender card) does not fit the largest
            padding bucket.
    """
    if not text or len(text) > MAX_TEXT:
        raise ContentError(f"message text must be 1-{MAX_TEXT} characters")
    body: dict[str, object] = {"t": "text", "text": text}
    return _seal(sender, recipient, body, now_ms, message_id, sender_card)


def seal_control(
    sender: Identity,
    recipient: ContactCard,
    kind: str,
    data: bytes,
    *,
    now_ms: int,
    message_id: MessageId | None = None,
    sender_card: ContactCard | None = None,
) -> tuple[MessageId, SealedEnvelope]:
    """Sign a control payload of ``kind`` as ``sender`` and seal it to ``recipient``.

    Raises:
        ContentError: ``kind`` is not 1-32 of ``[a-z0-9_.-]`` starting with a
            letter, ``data`` is longer than :data:`MAX_CONTROL`, or the whole
            does not fit the largest padding bucket.
    """
    if _KIND.fullmatch(kind) is None or kind == "text":
        raise ContentError("control kind must be 1-32 of [a-z0-9_.-], starting with a letter")
    if len(data) > MAX_CONTROL:
        raise ContentError(f"control payload must be at most {MAX_CONTROL} bytes")
    body: dict[str, object] = {"t": "ctl", "kind": kind, "data": bytes(data)}
    return _seal(sender, recipient, body, now_ms, message_id, sender_card)


def _seal(
    sender: Identity,
    recipient: ContactCard,
    body: dict[str, object],
    now_ms: int,
    message_id: MessageId | None,
    sender_card: ContactCard | None,
) -> tuple[MessageId, SealedEnvelope]:
    mid = message_id if message_id is not None else MessageId.random()
    inner: dict[str, object] = {
        "v": 1,
        "from": sender.signing_key.public_key.to_bytes(),
        "to": bytes(recipient.identity_id),
        "mid": bytes(mid),
        "ts": now_ms,
        "body": body,
    }
    if sender_card is not None:
        inner["card"] = sender_card.to_bytes()
    inner["sig"] = sender.signing_key.sign(_SIG_DOMAIN + canonical_encode(inner))
    try:
        padded = pad(canonical_encode(inner))
    except PaddingTooLargeError:
        # Up to 4 UTF-8 bytes per character plus a large sender card can overflow
        # the biggest bucket even when the content is within its own limit.
        raise ContentError("message (content plus sender card) is too large to send") from None
    context = _SEAL_CONTEXT + bytes(recipient.mailbox)
    sealed = seal(recipient.encryption_key, padded, context=context)
    return mid, SealedEnvelope(recipient.mailbox, sealed)


def open_envelope(recipient: Identity, envelope: SealedEnvelope) -> OpenedMessage:
    """Decrypt and verify an envelope addressed to ``recipient``.

    Raises:
        EnvelopeRejectedError: for any failure (opaque by design).
    """
    try:
        context = _SEAL_CONTEXT + bytes(envelope.mailbox)
        plain = unpad(open_sealed(recipient.encryption_key, envelope.ciphertext, context=context))
        return _verify_inner(recipient, canonical_decode(plain, _INNER_LIMITS))
    except (
        DecryptionError,
        PaddingError,
        DecodeError,
        BadSignatureError,
        InvalidKeyError,
        InvalidCardError,
        ValueError,
    ):
        raise EnvelopeRejectedError from None


def _verify_inner(recipient: Identity, decoded: object) -> OpenedMessage:
    fields = Fields(decoded, "message", _INNER)
    if fields.get_int("v") != 1:
        raise ValueError("version")
    sender_key = VerifyKey.from_bytes(fields.get_bytes("from", size=32))
    signed = {key: value for key, value in decoded.items() if key != "sig"}  # type: ignore[attr-defined]
    sender_key.verify(fields.get_bytes("sig", size=64), _SIG_DOMAIN + canonical_encode(signed))
    to = IdentityId(fields.get_bytes("to", size=32))
    if to != recipient.identity_id:
        raise ValueError("recipient")
    text, kind, data = _body(fields.raw("body"))
    sender = IdentityId.derive(sender_key.to_bytes())
    card = (
        ContactCard.from_bytes(fields.get_bytes("card", max_size=2048))
        if fields.has("card")
        else None
    )
    if card is not None and card.identity_id != sender:
        raise ValueError("card")
    return OpenedMessage(
        message_id=MessageId(fields.get_bytes("mid", size=16)),
        sender=sender,
        sender_card=card,
        recipient=to,
        sent_at_ms=fields.get_int("ts"),
        text=text,
        kind=kind,
        data=data,
    )


def _body(raw: object) -> tuple[str, str, bytes]:
    """``(text, kind, data)`` of a text or control body."""
    content_type = Fields(raw, "body", _TEXT_BODY | _CONTROL_BODY).get_str("t", max_len=16)
    if content_type == "text":
        return Fields(raw, "body", _TEXT_BODY).get_str("text", max_len=MAX_TEXT), "text", b""
    if content_type != "ctl":
        raise ValueError("content type")
    body = Fields(raw, "body", _CONTROL_BODY)
    kind = body.get_str("kind", max_len=32)
    if _KIND.fullmatch(kind) is None or kind == "text":
        raise ValueError("control kind")
    return "", kind, body.get_bytes("data", max_size=MAX_CONTROL)
