"""A relay's paid blind tokens: sealed issuer keys, used payments, spent tokens.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

``relay_token_keys`` holds one sealed issuer key per epoch,
``relay_token_payments`` every currency-chain payment reference that bought
tokens (kept: a payment never buys twice), ``relay_token_spent`` the spent
hash of every redeemed token with its key's epoch (dropped with the epoch).
Frozen snapshot: the tables are spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "relay_token_keys",
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("epoch", name="pk_relay_token_keys"),
    )
    op.create_table(
        "relay_token_payments",
        sa.Column("ref", sa.LargeBinary(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("ref", name="pk_relay_token_payments"),
    )
    op.create_table(
        "relay_token_spent",
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_relay_token_spent"),
    )
    op.create_index("ix_relay_token_spent_epoch", "relay_token_spent", ["epoch"])


def downgrade() -> None:
    op.drop_index("ix_relay_token_spent_epoch", "relay_token_spent")
    op.drop_table("relay_token_spent")
    op.drop_table("relay_token_payments")
    op.drop_table("relay_token_keys")
