"""Each message's place in its conversation (the Lamport clock it carries).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

``conv_order`` is NULL for messages stored before (they sort first, by storage
time); a conversation's listing sorts by it. Frozen snapshot: spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("conv_order", sa.BigInteger(), nullable=True))
        batch.create_index("ix_messages_peer_ix_conv_order", ["peer_ix", "conv_order"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_peer_ix_conv_order")
        batch.drop_column("conv_order")
