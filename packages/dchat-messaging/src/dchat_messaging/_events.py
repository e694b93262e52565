"""What the engine reports after receiving an envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dchat_core import IdentityId, MessageId
    from dchat_identity import ContactCard

    from ._content import Content

__all__ = ("Duplicate", "EngineEvent", "MessageReceived", "Rejected", "SessionReset")


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message opened and committed.

    Attributes:
        content: What the sender wrote.
        sender: The authenticated identity.
        sender_device: The authenticated device key (raw).
        new: False when the message id was already stored (a redelivery).
        blocked: The sender is blocked: the message was dropped, not stored.
        refused: Why a stranger's message to the bot was dropped, not stored
            (``StrangerLimitError.<code>``; ``blocked`` is then true too).
        contact: Whether the sender is in the contact book, as read in the
            transaction that stored the message (None: not looked up; the user
            agent looks it up for new texts).
    """

    content: Content
    sender: IdentityId
    sender_device: bytes
    new: bool
    blocked: bool = False
    contact: bool | None = None
    refused: str | None = None

    @property
    def message_id(self) -> MessageId:
        return self.content.message_id

    @property
    def kind(self) -> str:
        return self.content.kind

    @property
    def text(self) -> str:
        return self.content.text

    @property
    def data(self) -> bytes:
        return self.content.data

    @property
    def sender_card(self) -> ContactCard | None:
        return self.content.card

    @property
    def sent_at_ms(self) -> int:
        return self.content.sent_at_ms


@dataclass(frozen=True, slots=True)
class SessionReset:
    """A peer device started a new session, replacing an established one.

    Like Signal's "safety number / session reset" notice: show it to the user.
    """

    peer: IdentityId
    device: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    """An envelope was refused; ``reason`` is an error class name, for counting."""

    reason: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A copy of an envelope received already (through another home relay): not an error.

    Nothing changes but the count; the shell acknowledges it like any other.
    """


EngineEvent = MessageReceived | SessionReset | Rejected | Duplicate
