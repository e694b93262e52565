"""The relational schema, as typed SQLAlchemy declarative models.

These models are the single source of truth for the schema: the Alembic
revisions in ``migrations/versions`` must produce exactly these tables, and a
test compares the two with Alembic's autogenerate.

Tables that are read in arrival order (messages, outbox, mailbox entries) carry
a surrogate ``seq`` key. Timestamps come from callers and may tie or go
backwards, so ``seq`` is the tie-breaker that keeps ordering stable; it is a
64-bit integer on servers and SQLite's rowid alias (also 64-bit) on SQLite.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = (
    "Base",
    "Contact",
    "Identity",
    "MailboxRow",
    "Message",
    "OutboxRow",
    "metadata",
)

# Deterministic constraint names, so migrations on PostgreSQL can refer to them.
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only makes an ``INTEGER PRIMARY KEY`` the rowid alias, not ``BIGINT``.
_Seq = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base holding the package's :data:`metadata`."""

    metadata = MetaData(naming_convention=_NAMING)


metadata = Base.metadata


class Identity(Base):
    """The one local identity; ``slot`` is pinned to 1 so a second row cannot exist."""

    __tablename__ = "identity"
    __table_args__ = (CheckConstraint("slot = 1", name="single_row"),)

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    identity_id: Mapped[str] = mapped_column(String(128))
    keystore: Mapped[bytes] = mapped_column(LargeBinary)
    card: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class Contact(Base):
    """Address book; both the identity and the local name are unique."""

    __tablename__ = "contacts"

    identity_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    card: Mapped[bytes] = mapped_column(LargeBinary)
    added_at: Mapped[float] = mapped_column(Float)


class Message(Base):
    """Delivered messages; the unique ``message_id`` gives exactly-once storage."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        Index(None, "peer_id", "stored_at", "seq"),
        Index(None, "stored_at", "seq"),
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    message_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    direction: Mapped[str] = mapped_column(String(3))
    peer_id: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[float] = mapped_column(Float)
    stored_at: Mapped[float] = mapped_column(Float)


class OutboxRow(Base):
    """Envelopes waiting for delivery to a relay, with retry bookkeeping."""

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "next_attempt_at", "seq"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    message_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    relay: Mapped[str] = mapped_column(String(512))
    mailbox: Mapped[bytes] = mapped_column(LargeBinary)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer)
    enqueued_at: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float] = mapped_column(Float)


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
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    mailbox: Mapped[bytes] = mapped_column(LargeBinary)
    entry_id: Mapped[bytes] = mapped_column(LargeBinary)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    # Stored so quota checks are a cheap SUM, not a scan of every envelope.
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[float] = mapped_column(Float)
