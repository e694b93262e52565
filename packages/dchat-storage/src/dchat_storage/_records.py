"""Immutable records returned by the repositories.

Fields that hold secrets or plaintext (a keystore, a message body) and bulky
ciphertext are left out of ``repr`` so that logging a record never leaks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = (
    "ContactRecord",
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
    """

    message_id: bytes
    direction: str
    peer_id: str
    body: str = field(repr=False)
    sent_at: float
    stored_at: float


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
    """

    message_id: bytes
    relay: str
    mailbox: bytes
    envelope: bytes = field(repr=False)
    attempts: int
    next_attempt_at: float


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
