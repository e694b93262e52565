"""Immutable records returned by the repositories.

Fields that hold secrets or plaintext (a keystore, a message body) and bulky
ciphertext are left out of ``repr`` so that logging a record never leaks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = (
    "AttachmentRecord",
    "BlockRecord",
    "ContactRecord",
    "ConversationRecord",
    "DeviceRecord",
    "EventRecord",
    "IdentityRecord",
    "MailboxEntry",
    "MessageRecord",
    "OutboxItem",
)


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """The node's own identity.

    Attributes:
        identity_id: The self-certifying identity id (text form).
        keystore: The serialized, passphrase-wrapped key store (opaque here).
        card: The public identity card (opaque here).
        created_at: Creation time, seconds since the Unix epoch.
    """

    identity_id: str
    keystore: bytes = field(repr=False)
    card: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A known peer with a local name.

    Attributes:
        name: The local, unique name the user gave the contact.
        identity_id: The contact's identity id; unique.
        card: The contact's public identity card (opaque here).
        added_at: When the contact was added, seconds since the Unix epoch.
    """

    name: str
    identity_id: str
    card: bytes
    added_at: float


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A message delivered to, or sent by, the local user.

    Attributes:
        message_id: The message's globally unique id.
        direction: ``"in"`` (received) or ``"out"`` (sent).
        peer_id: Identity id of the other party.
        body: The plaintext body.
        sent_at: The sender's timestamp, seconds since the Unix epoch.
        stored_at: When this node stored the message, seconds since the Unix epoch.
        conversation_id: The conversation, or None for the direct conversation
            with ``peer_id``.
        read_at: When the user read it, or None.
        expires_at: When it disappears (disappearing messages), or None.
        cursor: Its place in storage order, for paging (``MessageRepo.list``);
            None on a record not read from a database. Not compared.
    """

    message_id: bytes
    direction: str
    peer_id: str
    body: str = field(repr=False)
    sent_at: float
    stored_at: float
    conversation_id: str | None = None
    read_at: float | None = None
    expires_at: float | None = None
    cursor: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A sealed envelope waiting to be handed to a relay.

    Attributes:
        message_id: Id of the message the envelope carries; unique in the outbox.
        relay: Address of the relay to deliver to.
        mailbox: The recipient's mailbox id at that relay.
        envelope: The sealed envelope bytes.
        attempts: How many delivery attempts have failed so far.
        next_attempt_at: Earliest time of the next attempt, seconds since the Unix epoch.
        queued_at: When it was queued, seconds since the Unix epoch.
    """

    message_id: bytes
    relay: str
    mailbox: bytes
    envelope: bytes = field(repr=False)
    attempts: int
    next_attempt_at: float
    queued_at: float = 0.0


@dataclass(frozen=True, slots=True)
class MailboxEntry:
    """An envelope a relay holds for an offline recipient.

    Attributes:
        entry_id: BLAKE2b-256 of the envelope (personalized ``dchat-envelope``).
        mailbox: The mailbox the envelope was put into.
        envelope: The sealed envelope bytes.
        received_at: When the relay received it, seconds since the Unix epoch.
    """

    entry_id: bytes
    mailbox: bytes
    envelope: bytes = field(repr=False)
    received_at: float


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """A conversation's lifecycle settings.

    Attributes:
        conversation_id: The conversation's id (for a direct chat, the peer's
            identity id).
        title: A local title (may be empty).
        retention: Keep messages this many seconds after storing; None = forever.
        disappear_after: Delete a message this many seconds after it is read
            (sent messages: after sending); None = no timer.
        created_at: Seconds since the Unix epoch.
    """

    conversation_id: str
    title: str = field(repr=False)
    retention: float | None
    disappear_after: float | None
    created_at: float


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device of an identity.

    Attributes:
        owner_id: Identity id the device belongs to.
        device_id: The device's id.
        name: A human-readable name.
        data: The device's signed certificate or keys (opaque here).
        added_at: Seconds since the Unix epoch.
        revoked_at: When it was revoked, or None while active.
    """

    owner_id: str
    device_id: bytes
    name: str = field(repr=False)
    data: bytes = field(repr=False)
    added_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A stored chain block.

    Attributes:
        chain: The chain's name (e.g. ``"chat"``, ``"currency"``).
        height: The block height.
        hash: The block hash.
        data: The encoded block.
    """

    chain: str
    height: int
    hash: bytes
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    """An uploaded attachment's metadata (its content is read separately).

    Attributes:
        attachment_id: Random 16-byte id of this upload.
        owner_id: Identity id whose quota the attachment counts against.
        kind: ``image``, ``video``, ``audio``, ``voice`` or ``document``.
        media_type: The type detected from the content bytes.
        name: The file name given by the sender (may be empty).
        size: Stored size in bytes (after location stripping).
        content_hash: BLAKE2b-256 of the stored content.
        width: Image width in pixels, or None.
        height: Image height in pixels, or None.
        thumbnail: A JPEG thumbnail (images), or empty.
        location_kept: Whether the sender opted to keep location metadata.
        created_at: Seconds since the Unix epoch.
    """

    attachment_id: bytes
    owner_id: str
    kind: str
    media_type: str
    name: str = field(repr=False)
    size: int
    content_hash: bytes
    width: int | None
    height: int | None
    thumbnail: bytes = field(repr=False)
    location_kept: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event of the log.

    Attributes:
        cursor: Its place in the log; resume after it to get the events that follow.
        kind: What happened (``message``, ``request``, ...).
        created_at: When it was appended, seconds since the Unix epoch.
        data: The event's data (empty for a ``message`` event).
        message: The stored message, for a ``message`` event; else None.
    """

    cursor: int
    kind: str
    created_at: float
    data: dict[str, Any] = field(repr=False)
    message: MessageRecord | None = field(default=None, repr=False)
