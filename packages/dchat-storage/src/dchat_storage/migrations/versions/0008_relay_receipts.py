"""A relay's delivery receipts and sealed receipt batches (durable across restarts).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

``relay_receipts`` holds every receipt the relay was given: pending ones
(``root`` NULL) and those of a sealed batch (``root`` its Merkle root);
``relay_receipt_batches`` one row per sealed batch with its seal and claim
times. A batch claimed on chain is answerable for audits after a restart.
Frozen snapshot: the tables are spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "relay_receipts",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("receipt", sa.LargeBinary(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=True),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_relay_receipts"),
        sa.UniqueConstraint("digest", name="uq_relay_receipts_digest"),
    )
    op.create_index("ix_relay_receipts_root_seq", "relay_receipts", ["root", "seq"])
    op.create_table(
        "relay_receipt_batches",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_at", sa.Float(), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_relay_receipt_batches"),
        sa.UniqueConstraint("root", name="uq_relay_receipt_batches_root"),
    )


def downgrade() -> None:
    op.drop_table("relay_receipt_batches")
    op.drop_index("ix_relay_receipts_root_seq", "relay_receipts")
    op.drop_table("relay_receipts")
