"""Errors of :mod:`dchat_messaging`.

::

    DchatMessagingError(DchatError)
    ├── MalformedEnvelopeError(PeerError, ValueError)   the outer envelope cannot be parsed
    ├── EnvelopeRejectedError(PeerError, ValueError)    opening failed (one opaque error:
    │                                                   decryption, session, recipient, content)
    ├── AttachmentRefusedError(PeerError, ValueError)   an attachment is not what its message
    │                                                   declared (``code`` says how)
    ├── PaymentRefusedError(PeerError, ValueError)      a payment message the chain does not
    │                                                   back (``code`` says how)
    ├── BundleRejectedError(PeerError, ValueError)      a prekey bundle is forged, expired,
    │                                                   or not the device's
    ├── ConversationError(PeerError, ValueError)        a receipt, edit, delete or reaction is
    │                                                   refused (``code``: malformed,
    │                                                   unknown_message, not_author)
    ├── GroupError(PeerError, ValueError)               a group update, sender key or group
    │                                                   message is refused (``code`` says why)
    ├── ChannelError(DchatMessagingError, ValueError)   a channel link, post or call is refused
    │                                                   (``code``: bad_link, forged, replayed,
    │                                                   undecryptable, unknown_channel, ...)
    ├── ContentError(CallerError, ValueError)           a message the caller built is invalid
    ├── EngineStateError(CallerError)                   the engine's stored state is unusable
    ├── BotApiError(CallerError, ValueError)        a Bot API call is refused (``error_code``:
    │                                               400 bad params, 401 bad/revoked token,
    │                                               403 token lacks the scope, 404 no method)
    ├── BotControlError(PeerError, ValueError)      a bot control (keyboard, button press,
    │                                               query, answer) is refused (``code``)
    ├── StrangerLimitError(PeerError, ValueError)   a stranger's text to a bot is over a
    │                                               per-stranger limit (``code``: rate,
    │                                               pending, pending_total, senders)
    └── RequestError(CallerError)                       a message-request, block-list or contact
                                                        call does not fit the state (``code``
                                                        says why: not_found, no_card,
                                                        corrupt_state, unknown_contact,
                                                        quiet_contact)
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError

__all__ = (
    "AttachmentRefusedError",
    "BotApiError",
    "BotControlError",
    "BundleRejectedError",
    "ChannelError",
    "ContentError",
    "ConversationError",
    "DchatMessagingError",
    "EngineStateError",
    "EnvelopeRejectedError",
    "GroupError",
    "MalformedEnvelopeError",
    "PaymentRefusedError",
    "RequestError",
    "StrangerLimitError",
)


class DchatMessagingError(DchatError):
    """Root of the errors raised by :mod:`dchat_messaging`."""


class MalformedEnvelopeError(DchatMessagingError, PeerError, ValueError):
    """The outer envelope bytes are not a valid envelope."""


class EnvelopeRejectedError(DchatMessagingError, PeerError, ValueError):
    """An envelope could not be opened and verified. Deliberately says no more."""

    def __init__(self) -> None:
        super().__init__("envelope rejected")


class BundleRejectedError(DchatMessagingError, PeerError, ValueError):
    """A fetched prekey bundle cannot start a session with the device it was fetched for."""


class ContentError(DchatMessagingError, CallerError, ValueError):
    """The message content given by the caller is invalid (e.g. too long)."""


class ConversationError(DchatMessagingError, PeerError, ValueError):
    """A peer's receipt, edit, delete or reaction cannot be applied; nothing was changed.

    Attributes:
        code: ``malformed`` (the payload), ``unknown_message`` (no such message
            in that conversation), ``not_author`` (only a message's author edits
            or deletes it).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class EngineStateError(DchatMessagingError, CallerError):
    """The engine's stored state is missing or cannot be decoded."""


class RequestError(DchatMessagingError, CallerError):
    """A message-request, block-list or contact operation does not fit the current state.

    Attributes:
        code: Machine-readable reason (``not_found``, ``no_card``,
            ``corrupt_state``, ``unknown_contact``, ``quiet_contact``); a node's
            API answers with it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AttachmentRefusedError(DchatMessagingError, PeerError, ValueError):
    """An attachment is not what its message declared, or its blob is damaged.

    The message stays; its attachment is kept as refused with :attr:`code`.

    Attributes:
        code: ``type_mismatch`` (the bytes are not the declared type, or the
            kind does not take it), ``too_large``, ``malformed`` (broken
            content or a decompression bomb), ``bad_blob`` (the sealed bytes do
            not hash to the id, have another length, or do not open under the
            key), ``lie`` (size or dimensions other than declared),
            ``bad_descriptor`` (a field that contradicts the kind).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PaymentRefusedError(DchatMessagingError, PeerError, ValueError):
    """A received payment message is not backed by the transfer it claims.

    The message stays; it is not shown as paid, and its payment is kept
    refused with :attr:`code`.

    Attributes:
        code: ``not_found`` (the chain holds no transfer for the message's
            reference: forged, or naming another message's transfer),
            ``wrong_recipient``, ``wrong_amount``, ``wrong_payer`` (the proven
            transfer differs from the claim), ``wrong_chain`` (not the
            currency chain this node follows), ``replayed`` (its reference was
            used before), ``too_many`` (too many payments wait for verification).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ChannelError(DchatMessagingError, ValueError):
    """A broadcast channel's link, post or action is refused; nothing changed.

    Attributes:
        code: ``bad_link`` (a malformed invite link), ``forged`` (a post that
            does not verify, is for another channel or by a key the channel
            does not list), ``replayed`` (a publisher counter already used by
            another post), ``undecryptable``, ``bad_text``, ``unknown_channel``,
            ``not_publisher`` (we hold no key that may publish), ``exists``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class GroupError(DchatMessagingError, PeerError, ValueError):
    """A received group update, sender key or group message is refused; nothing changed.

    Attributes:
        code: ``malformed``, ``unknown_group``, ``not_member`` (the sender is
            not in the group), ``not_allowed`` (the group's settings do not let
            the sender do it), ``left`` (a group this node is no longer in),
            ``bad_signature`` (an update not signed by its
            author), ``stale`` (an update on a version this node has passed),
            ``unreadable`` (a message that does not authenticate: one opaque
            code for signature and ciphertext), ``replay``, ``too_far``,
            ``no_key`` (no sender key for that device and epoch), ``too_large``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BotApiError(DchatMessagingError, CallerError, ValueError):
    """A Bot API call is refused; ``error_code`` and ``description`` are Telegram's envelope."""

    def __init__(self, error_code: int, description: str) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description


class BotControlError(DchatMessagingError, PeerError, ValueError):
    """A bot control message between a user's node and a bot's node is refused.

    Attributes:
        code: ``malformed`` (not the control's shape, or out of bounds),
            ``forged`` (a press of a button the bot never sent that user),
            ``unknown_query`` (an answer to a query never asked, asked of
            another peer, or forgotten), ``replayed`` (a query or answer seen
            before), ``expired`` (an answer after the query timed out),
            ``not_a_bot`` (a question to a node that has no bot).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class StrangerLimitError(DchatMessagingError, PeerError, ValueError):
    """A stranger's text to this node's bot is refused before it is stored.

    Attributes:
        code: ``rate`` (the stranger's bucket is empty), ``pending`` (the
            stranger holds as many updates the bot has not taken as it may),
            ``pending_total`` (all strangers together do), ``senders`` (as many
            strangers as the node tracks are all busy).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
