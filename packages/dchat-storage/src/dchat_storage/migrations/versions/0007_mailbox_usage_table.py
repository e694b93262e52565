"""Each mailbox's entry count and bytes in a table of their own (the quota check).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

The relay checks a mailbox's quota on every put. Summing the mailbox's
entries read every one of them: about 100 ms per put into a mailbox near its
64 MiB quota, a cost anyone could impose by filling a mailbox. ``mailbox_usage``
holds the count and the sum per non-empty mailbox, kept by the repository in
the same transaction as the entries; the upgrade fills it from the entries
already stored. Frozen snapshot: spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "mailbox_usage",
        sa.Column("mailbox", sa.LargeBinary(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", name="pk_mailbox_usage"),
    )
    op.execute(
        "INSERT INTO mailbox_usage (mailbox, entries, size)"
        " SELECT mailbox, count(*), sum(size) FROM mailbox_entries GROUP BY mailbox"
    )


def downgrade() -> None:
    op.drop_table("mailbox_usage")
