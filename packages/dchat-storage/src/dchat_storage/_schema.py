"""The relational schema, as typed SQLAlchemy declarative models.

These models are the single source of truth for the schema: the Alembic
revisions in ``migrations/versions`` must produce exactly these tables, and a
test compares the two with Alembic's autogenerate.

User-database tables keep every private field in one sealed ``payload`` column
and match rows through blind-index columns (``*_ix``); see ``_sealing.py``.
Relay and chain tables hold data that is public or already end-to-end sealed,
in clear columns.

Tables read in arrival order carry a surrogate ``seq`` key. Timestamps come
from callers and may tie or go backwards, so ``seq`` is the tie-breaker that
keeps ordering stable; it is BIGINT on servers and SQLite's rowid alias.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = (
    "AttachmentRow",
    "Base",
    "BlobChunk",
    "BlobRow",
    "Block",
    "ChainState",
    "Contact",
    "Conversation",
    "DeviceRow",
    "EventRow",
    "Identity",
    "MailboxRow",
    "MailboxUsageRow",
    "Message",
    "MessageAttachment",
    "Meta",
    "OutboxRow",
    "PrekeyRow",
    "ReceiptBatchRow",
    "ReceiptRow",
    "SearchPending",
    "SearchTerm",
    "Setting",
    "TopicPostRow",
    "TopicRow",
    "metadata",
)

# Deterministic constraint names, so migrations on PostgreSQL can refer to them.
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only makes an ``INTEGER PRIMARY KEY`` the rowid alias, not ``BIGINT``.
_Seq = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base holding the package's :data:`metadata`."""

    metadata = MetaData(naming_convention=_NAMING)


metadata = Base.metadata


class Meta(Base):
    """Database-wide settings: at-rest mode, the wrapped storage key, a key check."""

    __tablename__ = "storage_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class Identity(Base):
    """The one local identity; ``slot`` is pinned to 1 so a second row cannot exist."""

    __tablename__ = "identity"
    __table_args__ = (CheckConstraint("slot = 1", name="single_row"),)

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class Contact(Base):
    """Address book; both the identity and the local name are unique (blind-indexed)."""

    __tablename__ = "contacts"

    id_ix: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    name_ix: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    added_at: Mapped[float] = mapped_column(Float)


class Conversation(Base):
    """Per-conversation lifecycle settings; NULL means keep forever / no timer."""

    __tablename__ = "conversations"

    conv_ix: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    retention_s: Mapped[float | None] = mapped_column(Float)
    disappear_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)


class Message(Base):
    """Delivered messages; the unique ``message_ix`` gives exactly-once storage."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        Index(None, "peer_ix", "stored_at", "seq"),
        Index(None, "peer_ix", "conv_order"),
        Index(None, "conv_ix", "stored_at", "seq"),
        Index(None, "stored_at", "seq"),
        Index(None, "expires_at"),
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    message_ix: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    direction: Mapped[str] = mapped_column(String(3))
    peer_ix: Mapped[bytes] = mapped_column(LargeBinary)
    conv_ix: Mapped[bytes] = mapped_column(LargeBinary)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    sent_at: Mapped[float] = mapped_column(Float)
    stored_at: Mapped[float] = mapped_column(Float)
    # The message's place in its conversation (its Lamport clock); NULL before 0005.
    conv_order: Mapped[int | None] = mapped_column(BigInteger)
    # Disappearing messages: the timer starts when the message is read.
    read_at: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)


class SearchTerm(Base):
    """The search index (``_search.py``): one row per distinct word of a message.

    ``term_ix`` is the word's blind index (never the word, on a sealed
    database); a row goes when its message goes (ON DELETE CASCADE). Rows
    arrive through :class:`SearchPending`.
    """

    __tablename__ = "search_terms"
    # Clustered by (term, message) on SQLite: one B-tree fewer to write per word.
    __table_args__ = ({"sqlite_with_rowid": False},)

    term_ix: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    message_seq: Mapped[int] = mapped_column(
        _Seq, ForeignKey("messages.seq", ondelete="CASCADE"), primary_key=True, index=True
    )


class SearchPending(Base):
    """Index rows of messages stored since the last search, in storage order.

    Written with each message: appended at the end of one B-tree (a page or
    two per message) instead of scattered over ``search_terms`` by token;
    the next search moves them there in one sorted pass.
    """

    __tablename__ = "search_pending"
    __table_args__ = ({"sqlite_with_rowid": False},)

    message_seq: Mapped[int] = mapped_column(
        _Seq, ForeignKey("messages.seq", ondelete="CASCADE"), primary_key=True
    )
    term_ix: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)


class OutboxRow(Base):
    """Envelopes waiting for delivery to a relay, with retry bookkeeping."""

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "next_attempt_at", "seq"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    message_ix: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer)
    enqueued_at: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float] = mapped_column(Float)


class EventRow(Base):
    """The event log clients follow (``_events.py``); ``seq`` is the client's cursor.

    ``sqlite_autoincrement`` makes SQLite never reuse a sequence number, even after
    the newest rows were deleted, so a cursor only ever points backwards. A
    ``message`` event refers to its message by ``message_seq`` and goes when the
    message goes (ON DELETE CASCADE): an event exists exactly while its message does.
    """

    __tablename__ = "events"
    __table_args__ = (Index(None, "created_at"), {"sqlite_autoincrement": True})

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    message_seq: Mapped[int | None] = mapped_column(
        _Seq, ForeignKey("messages.seq", ondelete="CASCADE"), index=True
    )
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class DeviceRow(Base):
    """Devices of an identity (own or a contact's), with revocation time."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("owner_ix", "device_ix"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    owner_ix: Mapped[bytes] = mapped_column(LargeBinary)
    device_ix: Mapped[bytes] = mapped_column(LargeBinary)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    added_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class Setting(Base):
    """Key/value settings; both the key and the value are private."""

    __tablename__ = "settings"

    key_ix: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[float] = mapped_column(Float)


class BlobRow(Base):
    """Deduplicated attachment content, stored as sealed chunks.

    ``content_ix`` is NULL while an upload is still streaming in; such pending
    blobs are invisible to readers and garbage-collected if abandoned.
    """

    __tablename__ = "blobs"
    __table_args__ = (Index(None, "created_at"),)

    blob_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    content_ix: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)


class BlobChunk(Base):
    """One sealed chunk of a blob; ``idx`` counts from 0."""

    __tablename__ = "blob_chunks"

    blob_id: Mapped[bytes] = mapped_column(
        LargeBinary, ForeignKey("blobs.blob_id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AttachmentRow(Base):
    """An identity's upload: metadata (sealed) and a reference to its blob."""

    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("owner_ix", "blob_id"), Index(None, "created_at"))

    attachment_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    owner_ix: Mapped[bytes] = mapped_column(LargeBinary)
    blob_id: Mapped[bytes] = mapped_column(LargeBinary, ForeignKey("blobs.blob_id"), index=True)
    # Clear, so a quota is a cheap SUM per owner.
    size: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class MessageAttachment(Base):
    """Which message references which attachment; GC keeps referenced ones."""

    __tablename__ = "message_attachments"

    # By ``seq``, which never changes (blind indexes do when a clear database is sealed).
    message_seq: Mapped[int] = mapped_column(
        _Seq, ForeignKey("messages.seq", ondelete="CASCADE"), primary_key=True
    )
    attachment_id: Mapped[bytes] = mapped_column(
        LargeBinary,
        ForeignKey("attachments.attachment_id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    )


class MailboxRow(Base):
    """Envelopes a relay stores for offline recipients.

    ``entry_id`` is unique per mailbox, not globally: with a global key, anyone
    who saw an envelope in transit could put it into their own mailbox first and
    so make the real delivery a silent no-op.
    """

    __tablename__ = "mailbox_entries"
    __table_args__ = (
        UniqueConstraint("mailbox", "entry_id"),
        Index(None, "mailbox", "received_at", "seq"),
        # Covering for usage() (count and sum of every entry, per metrics scrape); the
        # TTL sweep searches by received_at (migration 0006).
        Index(None, "received_at", "size"),
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    mailbox: Mapped[bytes] = mapped_column(LargeBinary)
    entry_id: Mapped[bytes] = mapped_column(LargeBinary)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    # Kept per row for the usage figures and the counters of ``mailbox_usage``.
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[float] = mapped_column(Float)


class MailboxUsageRow(Base):
    """Each non-empty mailbox's entry count and summed envelope bytes (the quota check).

    Kept by :class:`~dchat_storage.lowlevel.MailboxRepo` in the transaction that
    stores or deletes the entries, so a quota check is one primary-key read
    however full the mailbox is (summing its entries cost one read per entry:
    about 100 ms per put into a mailbox near its 64 MiB quota). A mailbox whose
    last entry goes loses its row.
    """

    __tablename__ = "mailbox_usage"

    mailbox: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    entries: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)


class PrekeyRow(Base):
    """Signed prekey bundles a relay hands out on behalf of a mailbox's owner.

    One-time bundles have their one-time ``prekey_id``; the single last-resort
    bundle per mailbox has ``prekey_id`` NULL. NULLs are distinct in a unique
    constraint, so a partial unique index keeps the last-resort bundle single.
    Prekey ids are u32, hence BIGINT.
    """

    __tablename__ = "relay_prekeys"
    __table_args__ = (
        UniqueConstraint("mailbox", "prekey_id"),
        Index(
            "uq_relay_prekeys_last_resort",
            "mailbox",
            unique=True,
            sqlite_where=text("prekey_id IS NULL"),
            postgresql_where=text("prekey_id IS NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    mailbox: Mapped[bytes] = mapped_column(LargeBinary)
    prekey_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bundle: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[float] = mapped_column(Float)


class TopicRow(Base):
    """A broadcast channel topic a relay holds: its post bytes and newest descriptor."""

    __tablename__ = "relay_topics"

    topic: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    held: Mapped[int] = mapped_column(BigInteger)
    desc_version: Mapped[int] = mapped_column(BigInteger)
    descriptor: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class TopicPostRow(Base):
    """A post a relay holds in a topic; ``seq`` is the relay's number for it.

    An evicted post keeps its row with ``post`` NULL, so the same post sent
    again is still answered as held instead of stored anew, and its
    publisher's counter stays taken.
    """

    __tablename__ = "relay_topic_posts"
    __table_args__ = (
        UniqueConstraint("topic", "post_id"),
        UniqueConstraint("topic", "publisher", "pseq"),
        Index(None, "topic", "seq"),
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    topic: Mapped[bytes] = mapped_column(LargeBinary)
    post_id: Mapped[bytes] = mapped_column(LargeBinary)
    publisher: Mapped[bytes] = mapped_column(LargeBinary)
    pseq: Mapped[int] = mapped_column(BigInteger)
    post: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    stored_at: Mapped[float] = mapped_column(Float)


class ReceiptRow(Base):
    """A delivery receipt a relay was given: pending (``root`` NULL) or in a sealed batch.

    ``digest`` is the receipt's SHA-256 (what a batch leaf names). Rows of one
    batch are read back by ``seq``, the order they were taken in.
    """

    __tablename__ = "relay_receipts"
    __table_args__ = (UniqueConstraint("digest"), Index(None, "root", "seq"))

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary)
    receipt: Mapped[bytes] = mapped_column(LargeBinary)
    root: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    stored_at: Mapped[float] = mapped_column(Float)


class ReceiptBatchRow(Base):
    """A sealed receipt batch, by Merkle root: when sealed and when claimed on chain."""

    __tablename__ = "relay_receipt_batches"

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    root: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    sealed_at: Mapped[float] = mapped_column(Float)
    claimed_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class TokenKeyRow(Base):
    """A relay's blind-token issuer key of one epoch, sealed by the token shop."""

    __tablename__ = "relay_token_keys"

    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    key: Mapped[bytes] = mapped_column(LargeBinary)


class TokenPaymentRow(Base):
    """A currency-chain payment reference that bought tokens (it never buys again)."""

    __tablename__ = "relay_token_payments"

    ref: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    used_at: Mapped[float] = mapped_column(Float)


class TokenSpentRow(Base):
    """A redeemed blind token's spent hash, with its key's epoch."""

    __tablename__ = "relay_token_spent"

    digest: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, index=True)


class Block(Base):
    """A chain's blocks, by height and by hash (public data, stored in clear)."""

    __tablename__ = "blocks"
    __table_args__ = (UniqueConstraint("chain", "hash"),)

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    height: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ChainState(Base):
    """A chain's committed application state as key/value pairs."""

    __tablename__ = "chain_state"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
