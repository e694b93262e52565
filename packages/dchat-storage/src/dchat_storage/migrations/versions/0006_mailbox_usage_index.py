"""The relay's usage figures read an index, not the table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

``MailboxRepo.usage`` (every metrics scrape) counts and sums every stored
envelope. With the index on ``received_at`` alone that is a scan of the whole
table, envelopes included (a gigabyte at a million 1 KiB envelopes). The index
becomes ``(received_at, size)``: the TTL sweep still searches it by its first
column, and the count and sum are answered from the index alone (SQLite's
covering index, PostgreSQL's index-only scan), a few dozen bytes a row.
"""

from __future__ import annotations

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox_entries") as batch:
        batch.create_index("ix_mailbox_entries_received_at_size", ["received_at", "size"])
        batch.drop_index("ix_mailbox_entries_received_at")


def downgrade() -> None:
    with op.batch_alter_table("mailbox_entries") as batch:
        batch.create_index("ix_mailbox_entries_received_at", ["received_at"])
        batch.drop_index("ix_mailbox_entries_received_at_size")
