"""dchat-messaging: sealed envelopes and message content."""

from __future__ import annotations

from ._envelope import MAX_CONTROL as MAX_CONTROL
from ._envelope import MAX_ENVELOPE as MAX_ENVELOPE
from ._envelope import MAX_TEXT as MAX_TEXT
from ._envelope import OpenedMessage as OpenedMessage
from ._envelope import SealedEnvelope as SealedEnvelope
from ._envelope import open_envelope as open_envelope
from ._envelope import seal_control as seal_control
from ._envelope import seal_message as seal_message
from ._errors import ContentError as ContentError
from ._errors import DchatMessagingError as DchatMessagingError
from ._errors import EnvelopeRejectedError as EnvelopeRejectedError
from ._errors import MalformedEnvelopeError as MalformedEnvelopeError

__all__ = (
    "ContentError",
    "DchatMessagingError",
    "EnvelopeRejectedError",
    "MAX_CONTROL",
    "MAX_ENVELOPE",
    "MAX_TEXT",
    "MalformedEnvelopeError",
    "OpenedMessage",
    "SealedEnvelope",
    "open_envelope",
    "seal_control",
    "seal_message",
)
