"""The control messages around texts: receipts, edits, deletes, reactions, typing, timers.

Each travels as a control message (``Content.control``) inside the ratchet
session, sealed like any text, so a relay cannot tell a receipt from a
message. Its ``data`` is the canonical encoding of one map:

* ``conv.receipt`` ``{"k": "d" | "r", "ids": [message id(16), ...]}``: the
  listed messages were delivered to (``d``) or read on (``r``) a device of
  the sender. One receipt covers up to :data:`MAX_RECEIPT_IDS` messages.
* ``conv.edit`` ``{"id": message id, "text": str}``: the author's new text
  (1 to :data:`~dchat_messaging.MAX_TEXT` characters).
* ``conv.delete`` ``{"id": message id}``: the author deletes the message for
  everyone (best effort: a device that does not honour it keeps it).
* ``conv.react`` ``{"id": message id, "e": emoji, "on": 0 | 1}``: add (1) or
  remove (0) the sender's reaction ``e`` (1 to :data:`MAX_EMOJI` characters).
* ``conv.typing`` ``{"on": 0 | 1}``: the sender started or stopped typing.
* ``conv.timer`` ``{"s": seconds, "n": version}``: the sender set the
  conversation's disappearing timer (1 to :data:`MAX_TIMER` seconds; 0 turns
  it off); ``n`` counts the changes (1 to :data:`MAX_TIMER_VERSION`).

Replies and forwards are fields of the text itself (``re``, ``fwd``; see
:mod:`._content`). Anything else in a control of these kinds, or one too
large, is a :class:`ConversationError` with code ``malformed``;
:mod:`._conversations` applies the decoded ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    MessageId,
    canonical_decode,
    canonical_encode,
)

from ._attachment import AttachmentBook
from ._content import MAX_TEXT
from ._errors import ConversationError
from ._payment import Payments

if TYPE_CHECKING:
    from ._store import StateStore

__all__ = (
    "CONVERSATION_KINDS",
    "DELETE_KIND",
    "EDIT_KIND",
    "MAX_EMOJI",
    "MAX_RECEIPT_IDS",
    "MAX_TIMER",
    "MAX_TIMER_VERSION",
    "REACT_KIND",
    "RECEIPT_KIND",
    "TIMER_KIND",
    "TYPING_KIND",
    "Delete",
    "Edit",
    "Reaction",
    "Receipt",
    "Timer",
    "Typing",
    "decode_conversation",
)

RECEIPT_KIND: Final = "conv.receipt"
EDIT_KIND: Final = "conv.edit"
DELETE_KIND: Final = "conv.delete"
REACT_KIND: Final = "conv.react"
TYPING_KIND: Final = "conv.typing"
TIMER_KIND: Final = "conv.timer"
CONVERSATION_KINDS: Final = frozenset(
    {RECEIPT_KIND, EDIT_KIND, DELETE_KIND, REACT_KIND, TYPING_KIND, TIMER_KIND}
)
MAX_RECEIPT_IDS: Final = 256
"""The most message ids one receipt names (more go in several receipts)."""
MAX_EMOJI: Final = 32
"""The longest reaction, in characters (an emoji with its modifiers)."""
MAX_TIMER: Final = 365 * 86400
"""The longest disappearing timer, in seconds (a year)."""
MAX_TIMER_VERSION: Final = 2**53
"""The highest timer version (a counter of changes)."""
_LIMITS: Final = DecodeLimits(max_size=48_000, max_depth=2, max_items=MAX_RECEIPT_IDS + 4)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Messages delivered to (``read`` False) or read on a device of the sender."""

    read: bool
    ids: tuple[MessageId, ...]

    def encode(self) -> bytes:
        """The control payload."""
        return canonical_encode(
            {"k": "r" if self.read else "d", "ids": [bytes(i) for i in self.ids]}
        )


@dataclass(frozen=True, slots=True)
class Edit:
    """The author's new text of ``target``."""

    target: MessageId
    text: str

    def encode(self) -> bytes:
        """The control payload."""
        return canonical_encode({"id": bytes(self.target), "text": self.text})


@dataclass(frozen=True, slots=True)
class Delete:
    """The author deletes ``target`` for everyone."""

    target: MessageId

    def encode(self) -> bytes:
        """The control payload."""
        return canonical_encode({"id": bytes(self.target)})


@dataclass(frozen=True, slots=True)
class Reaction:
    """The sender adds (``on``) or removes its reaction ``emoji`` to ``target``."""

    target: MessageId
    emoji: str
    on: bool

    def encode(self) -> bytes:
        """The control payload."""
        return canonical_encode({"id": bytes(self.target), "e": self.emoji, "on": int(self.on)})


@dataclass(frozen=True, slots=True)
class Typing:
    """The sender started (``on``) or stopped typing."""

    on: bool

    def encode(self) -> bytes:
        """The control payload."""
        return canonical_encode({"on": int(self.on)})


@dataclass(frozen=True, slots=True)
class Timer:
    """The sender set the conversation's disappearing timer (``seconds``; 0: off).

    ``version`` orders changes (a Lamport counter: one above the highest the
    sender had seen), so every device settles on the same timer without
    trusting anyone's clock.
    """

    seconds: int
    version: int

    def encode(self) -> bytes:
        """The control payload."""
        if not 1 <= self.version <= MAX_TIMER_VERSION:
            raise ConversationError("malformed", "a timer version is 1 to 2**53")
        return canonical_encode({"s": check_timer(self.seconds), "n": self.version})


ConversationControl = Receipt | Edit | Delete | Reaction | Typing | Timer


def check_timer(seconds: object) -> int:
    """``seconds`` if it is a valid timer: an int of 0 (off) to :data:`MAX_TIMER`."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= MAX_TIMER:
        raise ConversationError("malformed", f"a timer is 0 (off) to {MAX_TIMER} whole seconds")
    return seconds


def check_text(text: str) -> str:
    """``text`` if it is a valid message text (an edit's), else :class:`ConversationError`."""
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
        raise ConversationError("malformed", f"a text must be 1-{MAX_TEXT} characters")
    return text


def check_emoji(emoji: str) -> str:
    """``emoji`` if it is a valid reaction: 1-32 characters, no whitespace or control."""
    if (
        not isinstance(emoji, str)
        or not 1 <= len(emoji) <= MAX_EMOJI
        or any(c.isspace() or not c.isprintable() for c in emoji)
    ):
        raise ConversationError("malformed", f"a reaction is 1-{MAX_EMOJI} printable characters")
    return emoji


def decode_conversation(kind: str, data: bytes) -> ConversationControl:
    """Decode the payload of a control of one of :data:`CONVERSATION_KINDS`.

    Raises:
        ConversationError: ``malformed``: not the kind's map, a field out of
            range, too many ids, or an unknown kind.
    """
    try:
        value = canonical_decode(data, _LIMITS)
        if kind == RECEIPT_KIND:
            f = Fields(value, "receipt", frozenset({"k", "ids"}))
            which = f.get_str("k", max_len=1)
            raw = f.get_list("ids", max_len=MAX_RECEIPT_IDS)
            if which not in ("d", "r") or not raw:
                raise DecodeError("receipt kind or ids")
            ids = tuple(MessageId(_id_bytes(i)) for i in raw)
            return Receipt(which == "r", ids)
        if kind == EDIT_KIND:
            f = Fields(value, "edit", frozenset({"id", "text"}))
            return Edit(_target(f), check_text(f.get_str("text", max_len=MAX_TEXT)))
        if kind == DELETE_KIND:
            return Delete(_target(Fields(value, "delete", frozenset({"id"}))))
        if kind == REACT_KIND:
            f = Fields(value, "reaction", frozenset({"id", "e", "on"}))
            emoji = check_emoji(f.get_str("e", max_len=MAX_EMOJI))
            return Reaction(_target(f), emoji, f.get_int("on", hi=1) == 1)
        if kind == TYPING_KIND:
            return Typing(Fields(value, "typing", frozenset({"on"})).get_int("on", hi=1) == 1)
        if kind == TIMER_KIND:
            f = Fields(value, "timer", frozenset({"s", "n"}))
            version = f.get_int("n", lo=1, hi=MAX_TIMER_VERSION)
            return Timer(check_timer(f.raw("s")), version)
    except (DecodeError, ValueError) as exc:
        if isinstance(exc, ConversationError):
            raise
        raise ConversationError("malformed", f"a malformed {kind} control") from None
    raise ConversationError("malformed", f"{kind!r} is not a conversation control")


def _id_bytes(raw: object) -> bytes:
    if not isinstance(raw, bytes) or len(raw) != MessageId.SIZE:
        raise DecodeError("message id")
    return raw


def _target(fields: Fields) -> MessageId:
    return MessageId(fields.get_bytes("id", size=MessageId.SIZE))


NOTE_PREFIX: Final = "conv.note."
"""State key prefix of a message's note (replies, edits, reactions, receipts)."""


def forget_records(store: StateStore, message_id: bytes) -> None:
    """Drop what this node keeps beside a deleted message: note, payment and attachment records.

    Every way a message goes (deleted for everyone, expired, a contact's
    history deleted) calls this, so none leaves a record (or a file key) behind.
    """
    store.delete_state(NOTE_PREFIX + message_id.hex())
    Payments(store).forget(message_id)
    AttachmentBook(store).delete(message_id)
