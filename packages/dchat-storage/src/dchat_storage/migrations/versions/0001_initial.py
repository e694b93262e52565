"""Initial schema: identity, contacts, messages, outbox and relay mailboxes.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Migrations are frozen snapshots: they spell every table out instead of
importing ``_schema``, so later model changes cannot rewrite history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

# 64-bit surrogate keys, except on SQLite where only INTEGER is the rowid alias.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _seq() -> sa.Column[int]:
    return sa.Column("seq", _SEQ, autoincrement=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "identity",
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("identity_id", sa.String(length=128), nullable=False),
        sa.Column("keystore", sa.LargeBinary(), nullable=False),
        sa.Column("card", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.CheckConstraint("slot = 1", name="ck_identity_single_row"),
        sa.PrimaryKeyConstraint("slot", name="pk_identity"),
    )
    op.create_table(
        "contacts",
        sa.Column("identity_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("card", sa.LargeBinary(), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("identity_id", name="pk_contacts"),
        sa.UniqueConstraint("name", name="uq_contacts_name"),
    )
    op.create_table(
        "messages",
        _seq(),
        sa.Column("message_id", sa.LargeBinary(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("peer_id", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_messages_direction"),
        sa.PrimaryKeyConstraint("seq", name="pk_messages"),
        sa.UniqueConstraint("message_id", name="uq_messages_message_id"),
    )
    op.create_index(
        "ix_messages_peer_id_stored_at_seq", "messages", ["peer_id", "stored_at", "seq"]
    )
    op.create_index("ix_messages_stored_at_seq", "messages", ["stored_at", "seq"])
    op.create_table(
        "outbox",
        _seq(),
        sa.Column("message_id", sa.LargeBinary(), nullable=False),
        sa.Column("relay", sa.String(length=512), nullable=False),
        sa.Column("mailbox", sa.LargeBinary(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_next_attempt_at_seq", "outbox", ["next_attempt_at", "seq"])
    op.create_table(
        "mailbox_entries",
        _seq(),
        sa.Column("mailbox", sa.LargeBinary(), nullable=False),
        sa.Column("entry_id", sa.LargeBinary(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_mailbox_entries"),
        sa.UniqueConstraint("mailbox", "entry_id", name="uq_mailbox_entries_mailbox_entry_id"),
    )
    op.create_index(
        "ix_mailbox_entries_mailbox_received_at_seq",
        "mailbox_entries",
        ["mailbox", "received_at", "seq"],
    )


def downgrade() -> None:
    # Dropping a table drops its indexes too.
    for table in ("mailbox_entries", "outbox", "messages", "contacts", "identity"):
        op.drop_table(table)
